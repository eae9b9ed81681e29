// The organism's area in µm², where camera.pixelSizeUm is known: measured by the preprocess stage
// on real NDSB images (a bright-field one, and a dark-field version of another), stored in a real
// SQLite file (frames.area_um2, migration 10), given by the review API and carried into the
// EcoTaxa export next to object_area in pixels. A database from before migration 10 still exports.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ECOTAXA_COLUMNS, exportEcoTaxa } from '../../src/export/ecotaxa.js';
import { ExportSource } from '../../src/export/source.js';
import { silentLogger } from '../../src/log.js';
import { preprocessFrame } from '../../src/preprocess/preprocess.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { migrate, MIGRATIONS } from '../../src/store/index.js';
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
