// `plankwatch export --shore` on a PostgreSQL shore (shore.database: postgres, shore.postgresUrl,
// shore.postgresPasswordFile), run as the built CLI against a real PostgreSQL server: the export
// reads it instead of looking for data/shore.db; an export with nothing to put in it exits
// non-zero with PW_E_EXPORT_EMPTY and leaves no zip behind; a malformed --category-map line is an
// error that names its line number and content.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { PostgresShoreDriver } from '../../src/shore/postgres.js';
import { ShoreStore } from '../../src/shore/store.js';
import { Store } from '../../src/store/store.js';
import type { SyncBatch } from '../../src/sync/records.js';
import { unzip } from '../export/unzip.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { postgresBin, startPostgres, type Postgres } from '../helpers/postgres.js';
import { classified, fixtureFiles, incoming } from '../store/helpers.js';
import { tmp } from '../sync/helpers.js';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');
const T0 = Date.UTC(2026, 10, 2, 8, 0, 0);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI in `cwd` (a folder without data/shore.db). */
async function cli(cwd: string, args: string[]): Promise<Result> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, PLANKWATCH_LOG_LEVEL: 'warn' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const jpegs = fixtureFiles().map((f) => readFileSync(f));
const shas = jpegs.map((b) => createHash('sha256').update(b).digest('hex'));

/** Two ROIs of cam-b: the first validated with a thumbnail ashore, the second without any image. */
function shoreBatch(): SyncBatch {
  const prediction = (seq: number, i: number, at: number) => ({
    seq,
    kind: 'prediction' as const,
    key: `${shas[i]!}:e1`,
    at,
    data: {
      sha256: shas[i]!, relPath: `tow-1/${i}.jpg`, bytes: jpegs[i]!.length, width: 40, height: 30, area: 300, format: 'jpeg',
      arrivedAt: at, classifiedAt: at, ensembleVersion: 'e1', label: 'copepod_calanoid', probability: 0.9, margin: 0.8,
      disagreement: 0, topK: [['copepod_calanoid', 0.9]], members: [],
    },
  });
  return {
    v: 1,
    instrument: 'cam-b',
    sentAt: T0,
    records: [
      prediction(1, 0, T0),
      prediction(2, 1, T0 + 60_000),
      { seq: 3, kind: 'label', key: `${shas[0]!}@${T0 + 5}`, at: T0, data: { sha256: shas[0]!, state: 'validated', label: 'detritus_other', by: 'ben', at: T0 + 5 } },
      { seq: 4, kind: 'thumbnail', key: shas[0]!, at: T0, data: { sha256: shas[0]!, relPath: 'tow-1/0.jpg', state: 'validated', format: 'jpeg', width: 40, height: 30, data: jpegs[0]!.toString('base64') } },
    ],
  } as SyncBatch;
}

let postgres: Postgres | undefined;
let shoreUrl = '';

/** A working folder with a config naming the PostgreSQL shore; no data/shore.db anywhere. */
function workdir(shore: Record<string, unknown> = {}): { dir: string; config: string } {
  const dir = tmp('shore-export');
  const passwordFile = path.join(dir, 'pg-password');
  writeFileSync(passwordFile, 'not-checked-by-trust-auth\n');
  const config = path.join(dir, 'plankwatch.yaml');
  const values = { database: 'postgres', postgresUrl: shoreUrl, postgresPasswordFile: passwordFile, ...shore };
  // A station position: OBIS refuses occurrences without coordinates, and these ROIs have no track.
  writeFileSync(config, `shore:\n${Object.entries(values).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join('\n')}\nexport:\n  latitude: "25.7"\n  longitude: "-80.1"\n`);
  return { dir, config };
}

const haveServer = postgresBin() !== undefined;

describe.skipIf(!haveServer)('export --shore from a PostgreSQL shore', () => {
  beforeAll(async () => {
    postgres = await startPostgres();
    const admin = new PostgresShoreDriver({ url: postgres.url });
    await admin.open();
    await admin.query('CREATE DATABASE shore_export', []);
    await admin.close();
    shoreUrl = postgres.url.replace(/\/postgres$/, '/shore_export');
    const store = new ShoreStore(new PostgresShoreDriver({ url: shoreUrl }));
    await store.open();
    await store.apply(shoreBatch());
    await store.close();
  }, 120_000);

  afterAll(() => {
    postgres?.stop();
  });

  it('EcoTaxa and Darwin Core exports read shore.postgresUrl, not data/shore.db', async () => {
    const { dir, config } = workdir();
    const eco = path.join(dir, 'eco.zip');
    const r = await cli(dir, ['export', 'ecotaxa', '--shore', '-c', config, '-o', eco]);
    expect(r.stderr).not.toContain('shore.db');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('1 objects, 1 images');
    // The second ROI has no image ashore: named on stderr and in missing_images.tsv.
    expect(r.stderr).toContain('PW_E_EXPORT_IMAGE_MISSING');
    const files = unzip(eco);
    const rows = files.get('ecotaxa_plankwatch.tsv')!.toString('utf8').trimEnd().split('\n').map((l) => l.split('\t'));
    const col = (name: string): number => rows[0]!.indexOf(name);
    expect(rows).toHaveLength(3);
    expect(rows[2]![col('object_sha256')]).toBe(shas[0]);
    expect(rows[2]![col('object_annotation_status')]).toBe('validated');
    expect(rows[2]![col('object_annotation_category')]).toBe('detritus_other');
    expect(rows[2]![col('object_annotation_person_name')]).toBe('ben');
    expect(rows[2]![col('object_width')]).toBe('40');
    expect(rows[2]![col('object_date')]).toBe('20261102');
    expect(rows[2]![col('acq_id')]).toMatch(/^cam-b_/);
    expect(files.get(rows[2]![col('img_file_name')]!)).toEqual(jpegs[0]);
    expect(files.get('missing_images.tsv')!.toString()).toContain(shas[1]!);

    const dwc = path.join(dir, 'dwca.zip');
    const d = await cli(dir, ['export', 'dwc', '--shore', '-c', config, '-o', dwc]);
    expect(d.code, d.stderr + d.stdout).toBe(0);
    // The validated ROI is detritus, not an organism: EcoTaxa keeps it, the occurrences do not.
    expect(d.stdout).toContain('1 occurrences');
    expect(d.stdout).toContain('1 non-organism ROIs left out');
    const occ = unzip(dwc).get('occurrence.txt')!.toString('utf8');
    // The copepod ROI, read from PostgreSQL: its WoRMS name, machine status and the event of its tow.
    expect(occ).toContain('\tCalanoida\turn:lsid:marinespecies.org:taxname:1100\t');
    expect(occ).toContain('PredictedByMachine');
    expect(occ).toContain('cam-b_20261102T0800');
  }, 60_000);

  it('the password file named by shore.postgresPasswordFile is read: a missing one is an error naming the key', async () => {
    const { dir, config } = workdir({ postgresPasswordFile: '/nonexistent/pg-password' });
    const r = await cli(dir, ['export', 'ecotaxa', '--shore', '-c', config, '-o', path.join(dir, 'x.zip')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('shore.postgresPasswordFile');
    expect(readdirSync(dir).filter((n) => n.startsWith('x.zip'))).toEqual([]);
  }, 60_000);

  it('nothing to export (no ROI in the window, or none with an image) exits non-zero with PW_E_EXPORT_EMPTY and writes no zip', async () => {
    const { dir, config } = workdir();
    const none = path.join(dir, 'none.zip');
    const r1 = await cli(dir, ['export', 'ecotaxa', '--shore', '-c', config, '-o', none, '--since', '2030-01-01T00:00:00Z']);
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toContain('PW_E_EXPORT_EMPTY');
    expect(r1.stderr).toContain('--since');
    // Only the ROI without an image ashore: nothing EcoTaxa could import.
    const noImage = path.join(dir, 'no-image.zip');
    const r2 = await cli(dir, ['export', 'ecotaxa', '--shore', '-c', config, '-o', noImage, '--since', new Date(T0 + 30_000).toISOString()]);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toContain('PW_E_EXPORT_EMPTY');
    expect(r2.stderr).toContain('1 ROI');
    const r3 = await cli(dir, ['export', 'dwc', '--shore', '-c', config, '-o', path.join(dir, 'none-dwca.zip'), '--instrument', 'cam-zzz']);
    expect(r3.code).not.toBe(0);
    expect(r3.stderr).toContain('PW_E_EXPORT_EMPTY');
    expect(readdirSync(dir).filter((n) => n.includes('.zip'))).toEqual([]);
  }, 60_000);

  it('a malformed --category-map line is an error naming its line number and content', async () => {
    const { dir, config } = workdir();
    const map = path.join(dir, 'categories.tsv');
    writeFileSync(map, '# plankwatch label<TAB>EcoTaxa category\n\ncopepod_calanoid\tCalanoida\ndetritus_other Detritus\n');
    const out = path.join(dir, 'eco.zip');
    const r = await cli(dir, ['export', 'ecotaxa', '--shore', '-c', config, '-o', out, '--category-map', map]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('PW_E_EXPORT_CATEGORY_MAP');
    expect(r.stderr).toContain('line 4');
    expect(r.stderr).toContain('detritus_other Detritus');
    expect(existsSync(out)).toBe(false);
    // The same map with the tab in place is accepted and applied.
    writeFileSync(map, '# plankwatch label<TAB>EcoTaxa category\n\ncopepod_calanoid\tCalanoida\ndetritus_other\tDetritus\n');
    const ok = await cli(dir, ['export', 'ecotaxa', '--shore', '-c', config, '-o', out, '--category-map', map]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(unzip(out).get('ecotaxa_plankwatch.tsv')!.toString()).toContain('\tDetritus\t');
  }, 60_000);
});

describe('export from a ship database (--db): the same rules without a server', () => {
  it('no image anywhere: PW_E_EXPORT_EMPTY and no zip; a malformed map line: PW_E_EXPORT_CATEGORY_MAP with its line', async () => {
    const dir = tmp('ship-export');
    const db = path.join(dir, 'ship.db');
    const store = new Store({ path: db, countsWindowMs: 60_000, logger: silentLogger() });
    store.open();
    store.recordClassified([classified(incoming(fixtureFiles()[0]!, 'tow-1/a.jpg'), 'copepod_calanoid', T0)]);
    store.close();
    const config = path.join(dir, 'plankwatch.yaml');
    writeFileSync(config, `ingest:\n  archiveDir: ${JSON.stringify(path.join(dir, 'archive'))}\n  watchDir: ${JSON.stringify(path.join(dir, 'incoming'))}\n`);
    const out = path.join(dir, 'eco.zip');
    const r = await cli(dir, ['export', 'ecotaxa', '--db', db, '-c', config, '-o', out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('PW_E_EXPORT_EMPTY');
    expect(existsSync(out)).toBe(false);
    const map = path.join(dir, 'map.tsv');
    writeFileSync(map, 'copepod_calanoid\tCalanoida\tsurplus column\n');
    const m = await cli(dir, ['export', 'dwc', '--db', db, '-c', config, '-o', path.join(dir, 'dwca.zip'), '--category-map', map]);
    expect(m.code).not.toBe(0);
    expect(m.stderr).toContain('PW_E_EXPORT_CATEGORY_MAP');
    expect(m.stderr).toContain('line 1');
    expect(readdirSync(dir).filter((n) => n.includes('.zip'))).toEqual([]);
  }, 60_000);
});
