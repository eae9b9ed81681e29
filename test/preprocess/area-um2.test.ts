// The organism's area in µm², where camera.pixelSizeUm is known: measured by the preprocess stage
// on real NDSB images (a bright-field one, and a dark-field version of another), stored in a real
// SQLite file (frames.area_um2, migration 10), given by the review API and carried into the
// EcoTaxa export next to object_area in pixels. A database from before migration 10 still exports.
// Synced ashore in the prediction record, stored by the shore on SQLite and on a real PostgreSQL
// server (a shore database made before gains the column), and exported from there.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECOTAXA_COLUMNS, exportEcoTaxa } from '../../src/export/ecotaxa.js';
import { ExportSource } from '../../src/export/source.js';
import { silentLogger } from '../../src/log.js';
import { preprocessFrame } from '../../src/preprocess/preprocess.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { PostgresShoreDriver } from '../../src/shore/postgres.js';
import { SHORE_SCHEMA } from '../../src/shore/sql.js';
import { SqliteShoreDriver } from '../../src/shore/sqlite.js';
import { ShoreStore } from '../../src/shore/store.js';
import { migrate, MIGRATIONS } from '../../src/store/index.js';
import { enqueueClassified } from '../../src/sync/outbox.js';
import type { SyncBatch } from '../../src/sync/records.js';
import { postgresBin, startPostgres, type Postgres } from '../helpers/postgres.js';
import { Store } from '../../src/store/store.js';
import type { CameraProfile } from '../../src/preprocess/camera.js';
import type { IncomingFile, PreparedFrame } from '../../src/types.js';
import { classified } from '../store/helpers.js';
import { darkFieldGray } from '../helpers/cameras.js';
import { fixtureImages, sha256 } from '../helpers/images.js';
import { unzip } from '../export/unzip.js';

const work = mkdtempSync(path.join(tmpdir(), 'pw-area-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const SITE = { latitude: '25.7', longitude: '-80.1', depthMinM: '5', depthMaxM: '40', cruise: 'WS1406', institution: 'OSU' };
const T0 = Date.UTC(2026, 11, 7, 3, 0, 0);
const PIXEL_UM = 2.5;

/** A fixture image written under archive/, as the camera gave it, and prepared by the camera's profile. */
async function prepared(archive: string, name: string, bytes: Buffer, camera: CameraProfile, at: number): Promise<PreparedFrame> {
  const relPath = `tow-1/${name}`;
  mkdirSync(path.join(archive, 'tow-1'), { recursive: true });
  writeFileSync(path.join(archive, relPath), bytes);
  const file: IncomingFile = { path: path.join(archive, relPath), relPath, sha256: sha256(bytes), bytes: bytes.length, arrivedAt: at, mtimeMs: at };
  return preprocessFrame(file, bytes, { maxPixels: 4_000_000, inputs: [{ size: 48, spec: DEFAULT_PREPROCESS }], camera });
}

function tsv(text: string): string[][] {
  return text.trimEnd().split('\n').map((l) => l.split('\t'));
}

async function exportRows(db: string, archive: string): Promise<Map<string, Record<string, string>>> {
  const source = ExportSource.open(db, 'isiis-1');
  const out = path.join(work, `${path.basename(db)}.zip`);
  await exportEcoTaxa({ source, out, imageDirs: [archive], site: SITE });
  await source.close();
  const rows = tsv(unzip(out).get('ecotaxa_plankwatch.tsv')!.toString('utf8'));
  expect(rows[0]).toEqual(ECOTAXA_COLUMNS.map(([n]) => n));
  return new Map(rows.slice(2).map((r) => {
    const o = Object.fromEntries(rows[0]!.map((n, i) => [n, r[i]!]));
    return [o.object_sha256!, o];
  }));
}

describe('the organism area in µm²', () => {
  it('is stored, given by the review API and exported to EcoTaxa beside the area in pixels', async () => {
    const archive = path.join(work, 'archive');
    const images = fixtureImages();
    const bright = await prepared(archive, 'bright.jpg', images[0]!.bytes, { polarity: 'bright-field', colour: 'gray', pixelSizeUm: PIXEL_UM }, T0);
    const dark = await prepared(archive, 'dark.png', await darkFieldGray(images[20]!.bytes), { polarity: 'dark-field', colour: 'gray', pixelSizeUm: PIXEL_UM }, T0 + 1000);
    const unknown = await prepared(archive, 'unknown.jpg', images[40]!.bytes, { polarity: 'bright-field', colour: 'gray', pixelSizeUm: 0 }, T0 + 2000);
    for (const f of [bright, dark]) {
      expect(f.area).toBeGreaterThan(20);
      expect(f.area).toBeLessThan(f.width * f.height); // against the real background, not the whole image
      expect(f.areaUm2).toBe(f.area * PIXEL_UM * PIXEL_UM);
    }
    expect(unknown.areaUm2).toBeUndefined();

    const db = path.join(work, 'ship.db');
    const store = new Store({ path: db, countsWindowMs: 60_000, logger: silentLogger() });
    store.open();
    for (const [i, frame] of [bright, dark, unknown].entries()) {
      const c = classified(frame.file, 'detritus_other', T0 + i * 1000);
      store.recordClassified([{ ...c, frame: { ...frame, inputs: new Map() } }]);
    }
    const raw = store.database.prepare(`SELECT sha256, area, area_um2 FROM frames`).all() as { sha256: string; area: number; area_um2: number | null }[];
    const bySha = new Map(raw.map((r) => [r.sha256, r]));
    expect(bySha.get(bright.file.sha256)).toMatchObject({ area: bright.area, area_um2: bright.area * 6.25 });
    expect(bySha.get(dark.file.sha256)).toMatchObject({ area: dark.area, area_um2: dark.area * 6.25 });
    expect(bySha.get(unknown.file.sha256)).toMatchObject({ area: unknown.area, area_um2: null });
    expect(store.reviewRepository().item(dark.file.sha256)).toMatchObject({ area: dark.area, area_um2: dark.area * 6.25 });
    store.close();

    const rows = await exportRows(db, archive);
    expect(rows.get(bright.file.sha256)).toMatchObject({ object_area: String(bright.area), object_area_um2: String(bright.area * 6.25) });
    expect(rows.get(dark.file.sha256)).toMatchObject({ object_area: String(dark.area), object_area_um2: String(dark.area * 6.25) });
    expect(rows.get(unknown.file.sha256)).toMatchObject({ object_area: String(unknown.area), object_area_um2: '' });
  });

  it('a database from before migration 10 exports (no µm² to give), and takes the column when opened', async () => {
    const archive = path.join(work, 'archive-old');
    const img = fixtureImages()[5]!;
    const frame = await prepared(archive, 'old.jpg', img.bytes, { polarity: 'bright-field', colour: 'gray', pixelSizeUm: PIXEL_UM }, T0);
    const db = path.join(work, 'old.db');
    const old = new Database(db);
    migrate(old, MIGRATIONS.filter((m) => m.version < 10));
    old.prepare(`INSERT INTO frames (sha256, rel_path, bytes, width, height, area, format, arrived_at, classified_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, 'jpeg', ?, ?, ?)`)
      .run(frame.file.sha256, frame.file.relPath, frame.file.bytes, frame.width, frame.height, frame.area, T0, T0, T0);
    const id = (old.prepare(`SELECT id FROM frames`).get() as { id: number }).id;
    old.prepare(`INSERT INTO predictions (frame_id, ensemble_version, label, probability, margin, disagreement, top_k, classified_at) VALUES (?, 'e1', 'detritus_other', 0.9, 0.8, 0, '[]', ?)`).run(id, T0);
    old.close();

    const before = await exportRows(db, archive);
    expect(before.get(frame.file.sha256)).toMatchObject({ object_area: String(frame.area), object_area_um2: '' });

    const store = new Store({ path: db, countsWindowMs: 60_000, logger: silentLogger() });
    store.open();
    expect(store.status().schemaVersion).toBe(MIGRATIONS.length);
    expect(store.database.prepare(`SELECT area, area_um2 FROM frames`).get()).toEqual({ area: frame.area, area_um2: null });
    store.close();
  });
});

describe('the area in µm² ashore', () => {
  let postgres: Postgres | undefined;
  beforeAll(async () => {
    if (postgresBin()) postgres = await startPostgres();
  }, 120_000);
  afterAll(() => postgres?.stop());

  /** A ship that queues its records as the sync stage does, two frames stored (one at a known pixel size), and its batch. */
  async function shipBatch(archive: string): Promise<{ batch: SyncBatch; known: PreparedFrame; unknown: PreparedFrame }> {
    const images = fixtureImages();
    const known = await prepared(archive, 'known.jpg', images[30]!.bytes, { polarity: 'bright-field', colour: 'gray', pixelSizeUm: PIXEL_UM }, T0);
    const unknown = await prepared(archive, 'unknown.jpg', images[50]!.bytes, { polarity: 'bright-field', colour: 'gray', pixelSizeUm: 0 }, T0 + 1000);
    const store = new Store({ path: path.join(work, `ship-${Math.random().toString(36).slice(2)}.db`), countsWindowMs: 60_000, logger: silentLogger(), onRecordClassified: (outbox, stored) => enqueueClassified(outbox, { instrument: 'cam-a', windowMs: 60_000 }, stored) });
    store.open();
    for (const [i, frame] of [known, unknown].entries()) {
      const c = classified(frame.file, 'detritus_other', T0 + i * 1000);
      store.recordClassified([{ ...c, frame: { ...frame, inputs: new Map() } }]);
    }
    const rows = store.outboxRepository().pending('cam-a', Number.MAX_SAFE_INTEGER, 100);
    store.close();
    const records = rows.map((r) => ({ seq: r.seq, kind: r.kind, key: r.key, at: r.createdAt, data: JSON.parse(r.payload) as unknown })) as SyncBatch['records'];
    const predictions = records.filter((r) => r.kind === 'prediction').map((r) => r.data as { sha256: string; areaUm2?: number });
    expect(predictions.find((p) => p.sha256 === known.file.sha256)!.areaUm2).toBe(known.area * 6.25);
    expect(predictions.find((p) => p.sha256 === unknown.file.sha256)).not.toHaveProperty('areaUm2');
    return { batch: { v: 1, instrument: 'cam-a', sentAt: 0, records }, known, unknown };
  }

  it('is synced, stored by a SQLite shore and exported from it; an older shore database gains the column', async () => {
    const archive = path.join(work, 'archive-shore');
    const { batch, known, unknown } = await shipBatch(archive);
    // A shore database made before the column: shore_predictions without area_um2.
    const file = path.join(work, 'shore.db');
    const old = new Database(file);
    for (const sql of SHORE_SCHEMA) old.exec(sql.replace(/\n\s*area_um2\s+DOUBLE PRECISION,/, ''));
    expect(old.prepare(`SELECT 1 FROM pragma_table_info('shore_predictions') WHERE name = 'area_um2'`).get()).toBeUndefined();
    old.close();
    const shore = new ShoreStore(new SqliteShoreDriver({ path: file }));
    await shore.open();
    await shore.apply(batch);
    const stored = await shore.query('SELECT sha256, area, area_um2 FROM shore_predictions ORDER BY classified_at');
    expect(stored).toEqual([
      { sha256: known.file.sha256, area: known.area, area_um2: known.area * 6.25 },
      { sha256: unknown.file.sha256, area: unknown.area, area_um2: null },
    ]);
    await shore.close();
    const rows = await exportRows(file, archive);
    expect(rows.get(known.file.sha256)).toMatchObject({ object_area: String(known.area), object_area_um2: String(known.area * 6.25) });
    expect(rows.get(unknown.file.sha256)).toMatchObject({ object_area_um2: '' });
  });

  it('is stored by a PostgreSQL shore, whose older table gains the column', async (ctx) => {
    if (!postgres) return ctx.skip(); // PostgreSQL not installed (.ci/run installs it)
    const { batch, known } = await shipBatch(path.join(work, 'archive-pg'));
    const admin = new PostgresShoreDriver({ url: postgres.url });
    await admin.open();
    await admin.query('CREATE DATABASE area_um2_shore', []);
    await admin.close();
    const url = postgres.url.replace(/\/postgres$/, '/area_um2_shore');
    const before = new PostgresShoreDriver({ url, createSchema: false });
    await before.open();
    for (const sql of SHORE_SCHEMA) await before.query(sql.replace(/\n\s*area_um2\s+DOUBLE PRECISION,/, ''), []);
    await before.close();
    const shore = new ShoreStore(new PostgresShoreDriver({ url }));
    await shore.open();
    await shore.apply(batch);
    const [row] = await shore.query(`SELECT area, area_um2 FROM shore_predictions WHERE sha256 = '${known.file.sha256}'`);
    expect({ area: Number(row!.area), areaUm2: Number(row!.area_um2) }).toEqual({ area: known.area, areaUm2: known.area * 6.25 });
    await shore.close();
    const source = await ExportSource.openPostgres({ url });
    const objects = [];
    for await (const o of source.objects()) objects.push(o);
    await source.close();
    expect(objects.find((o) => o.sha256 === known.file.sha256)).toMatchObject({ area: known.area, areaUm2: known.area * 6.25 });
  }, 60_000);
});
