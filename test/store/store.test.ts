import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { Store } from '../../src/store/store.js';
import { classified, fixtureFiles, incoming, tempDir } from './helpers.js';

const HOUR = 3_600_000;
const WINDOW = 60_000;
const T0 = 1_700_000_040_000; // an instant 40 s into a minute window

describe('Store', () => {
  let dir: string;
  let cleanup: () => void;
  let dbPath: string;
  let store: Store;
  const fx = fixtureFiles();

  beforeEach(() => {
    ({ dir, cleanup } = tempDir('store'));
    dbPath = join(dir, 'db', 'plankwatch.sqlite');
    store = new Store({ path: dbPath, countsWindowMs: WINDOW, logger: silentLogger(), now: () => T0 + HOUR });
    store.open();
  });

  afterEach(() => {
    store.close();
    cleanup();
  });

  it('opens in WAL mode with foreign keys and synchronous=NORMAL', () => {
    const db = store.database;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('applies migrations once and is idempotent on reopen', () => {
    expect(store.status().schemaVersion).toBe(MIGRATIONS.length);
    store.recordClassified([classified(incoming(fx[0]!, 'a.jpg'), 'copepod', T0)]);
    store.close();
    store.open();
    store.close();
    store.open();
    const status = store.status();
    expect(status.schemaVersion).toBe(MIGRATIONS.length);
    expect(status.frames).toBe(1);
    const raw = new Database(dbPath, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    const tables = raw.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all();
    expect(tables).toEqual(expect.arrayContaining(['counts', 'frame_sources', 'frames', 'member_predictions', 'predictions', 'rejects']));
    raw.close();
  });

  it('refuses a database from a newer schema', () => {
    store.close();
    const raw = new Database(dbPath);
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    expect(() => store.open()).toThrow(/PW_E_DB/);
  });

  it('stores a classified frame with its prediction, members, count and source', () => {
    const file = incoming(fx[0]!, 'tow1/a.jpg');
    const res = store.recordClassified([classified(file, 'copepod', T0)]);
    expect(res.stored).toHaveLength(1);
    expect(res.alreadyPresent).toHaveLength(0);

    const db = store.database;
    const frame = db.prepare('SELECT * FROM frames').get() as Record<string, unknown>;
    expect(frame).toMatchObject({
      sha256: file.sha256, rel_path: 'tow1/a.jpg', bytes: file.bytes, width: 40, height: 30, area: 321,
      format: 'jpeg', arrived_at: file.arrivedAt, classified_at: T0, stored_at: T0 + HOUR,
    });
    const pred = db.prepare('SELECT * FROM predictions').get() as Record<string, unknown>;
    expect(pred).toMatchObject({ label: 'copepod', probability: 0.8, margin: 0.6, disagreement: 0.5, ensemble_version: 'e1' });
    expect(JSON.parse(pred.top_k as string)).toEqual([
      { label: 'copepod', probability: 0.8 },
      { label: 'other', probability: 0.2 },
    ]);
    const members = db.prepare('SELECT member, version, label, probability FROM member_predictions ORDER BY member').all();
    expect(members).toEqual([
      { member: 'cnn-a', version: '1', label: 'copepod', probability: 0.9 },
      { member: 'cnn-b', version: '3', label: 'other', probability: 0.55 },
    ]);
    expect(store.hasFrame(file.sha256)).toBe(true);
    expect(store.hasFrame('0'.repeat(64))).toBe(false);
    expect(store.isKnownSource('tow1/a.jpg', file.bytes, file.mtimeMs!)).toBe(true);
    expect(store.sourceOutcome('tow1/a.jpg', file.bytes, file.mtimeMs!)).toBe('processed');
    // A different size or mtime means the path was rewritten: not known.
    expect(store.isKnownSource('tow1/a.jpg', file.bytes + 1, file.mtimeMs!)).toBe(false);
    expect(store.isKnownSource('tow1/a.jpg', file.bytes, file.mtimeMs! + 1000)).toBe(false);
    expect(store.isKnownSource('tow1/b.jpg', file.bytes, file.mtimeMs!)).toBe(false);
    expect(store.framesWithoutPrediction()).toEqual([]);
  });

  it('recordClassified is idempotent on sha256: replaying a batch adds no row and no count', () => {
    const batch = fx.slice(0, 3).map((f, i) => classified(incoming(f, `f${i}.jpg`), 'copepod', T0));
    expect(store.recordClassified(batch).stored).toHaveLength(3);
    const again = store.recordClassified(batch);
    expect(again.stored).toHaveLength(0);
    expect(again.alreadyPresent).toHaveLength(3);
    const s = store.status();
    expect(s.frames).toBe(3);
    expect(s.predictions).toBe(3);
    expect(s.duplicates).toBe(0);
    expect(store.countsForWindow(T0).counts).toEqual({ copepod: 3 });
  });

  it('the same bytes twice in one batch are stored once; the second name becomes a duplicate source', () => {
    const a = incoming(fx[1]!, 'a.jpg');
    const b = incoming(fx[1]!, 'copy/b.jpg');
    const res = store.recordClassified([classified(a, 'diatom', T0), classified(b, 'diatom', T0)]);
    expect(res.stored.map((c) => c.frame.file.relPath)).toEqual(['a.jpg']);
    expect(res.alreadyPresent.map((c) => c.frame.file.relPath)).toEqual(['copy/b.jpg']);
    expect(store.sourceOutcome('copy/b.jpg', b.bytes, b.mtimeMs!)).toBe('duplicate');
    expect(store.status()).toMatchObject({ frames: 1, predictions: 1, duplicates: 1 });
    expect(store.countsForWindow(T0).total).toBe(1);
  });

  it('recordDuplicate records a second path for stored bytes, and refuses unknown bytes', () => {
    const a = incoming(fx[2]!, 'a.jpg');
    const dup = incoming(fx[2]!, 'again/a-copy.jpg');
    const unknown = incoming(fx[3]!, 'new.jpg');
    store.recordClassified([classified(a, 'protist', T0)]);
    expect(store.recordDuplicate(dup)).toBe(true);
    expect(store.recordDuplicate(dup)).toBe(true); // idempotent
    expect(store.recordDuplicate(unknown)).toBe(false);
    expect(store.isKnownSource('again/a-copy.jpg', dup.bytes, dup.mtimeMs!)).toBe(true);
    expect(store.isKnownSource('new.jpg', unknown.bytes, unknown.mtimeMs!)).toBe(false);
    expect(store.status()).toMatchObject({ frames: 1, predictions: 1, duplicates: 1 });
    expect(store.countsForWindow(T0).total).toBe(1);
  });

  it('counts per epoch-aligned window, per label, across batches', () => {
    const w0 = Math.floor(T0 / WINDOW) * WINDOW;
    const files = fx.map((f, i) => incoming(f, `c${i}.jpg`));
    store.recordClassified([
      classified(files[0]!, 'copepod', w0), // first ms of window 0
      classified(files[1]!, 'copepod', w0 + WINDOW - 1), // last ms of window 0
      classified(files[2]!, 'diatom', w0 + 30_000),
    ]);
    store.recordClassified([
      classified(files[3]!, 'copepod', w0 + WINDOW), // first ms of window 1
      classified(files[4]!, 'diatom', w0 + 3 * WINDOW + 5), // window 3 (window 2 empty)
    ]);

    const win0 = store.countsForWindow(w0 + 12_345);
    expect(win0).toEqual({ windowStart: w0, windowEnd: w0 + WINDOW, total: 3, counts: { copepod: 2, diatom: 1 } });
    expect(store.countsForWindow(w0 + WINDOW).counts).toEqual({ copepod: 1 });
    expect(store.countsForWindow(w0 + 2 * WINDOW)).toEqual({ windowStart: w0 + 2 * WINDOW, windowEnd: w0 + 3 * WINDOW, total: 0, counts: {} });

    const since = store.countsSince(w0 + WINDOW + 10);
    expect(since.since).toBe(w0 + WINDOW);
    expect(since.totals).toEqual({ copepod: 1, diatom: 1 });
    expect(since.total).toBe(2);
    expect(since.windows.map((w) => w.windowStart)).toEqual([w0 + WINDOW, w0 + 3 * WINDOW]);
    expect(store.countsSince(0).totals).toEqual({ copepod: 3, diatom: 2 });

    const recent = store.recentWindows(2);
    expect(recent.map((w) => [w.windowStart, w.total])).toEqual([
      [w0 + WINDOW, 1],
      [w0 + 3 * WINDOW, 1],
    ]);
    expect(store.recentWindows(0)).toEqual([]);

    // The counts table agrees with a recount from predictions.
    const recount = store.database
      .prepare(`SELECT label, count(*) AS n FROM predictions GROUP BY label ORDER BY label`)
      .all();
    expect(recount).toEqual([{ label: 'copepod', n: 3 }, { label: 'diatom', n: 2 }]);
  });

  it('a failing batch commits nothing: no frame, no prediction, no count', () => {
    const good = classified(incoming(fx[0]!, 'good.jpg'), 'copepod', T0);
    const bad = classified(incoming(fx[1]!, 'bad.jpg'), 'copepod', T0);
    // A prediction with a NaN probability violates the REAL NOT NULL column (NaN binds as NULL).
    bad.prediction.probability = Number.NaN;
    expect(() => store.recordClassified([good, bad])).toThrow();
    expect(store.status()).toMatchObject({ frames: 0, predictions: 0 });
    expect(store.countsSince(0).total).toBe(0);
    expect(store.isKnownSource('good.jpg', good.frame.file.bytes, good.frame.file.mtimeMs!)).toBe(false);
  });

  it('records rejects, counts them by code, and knows their paths', () => {
    const id = store.recordReject({ relPath: 'empty.jpg', code: 'PW_E_IMAGE_EMPTY', detail: '0 bytes', bytes: 0, mtimeMs: 5.5 });
    store.recordReject({ relPath: 'x.jpg', code: 'PW_E_IMAGE_CORRUPT', detail: 'truncated', sha256: 'f'.repeat(64), bytes: 10, mtimeMs: 7 });
    store.recordReject({ relPath: 'y.jpg', code: 'PW_E_IMAGE_CORRUPT', detail: 'truncated' });
    store.setQuarantinedPath(id, 'quarantine/empty.jpg');
    expect(store.status().rejects).toEqual({ total: 3, byCode: { PW_E_IMAGE_EMPTY: 1, PW_E_IMAGE_CORRUPT: 2 } });
    expect(store.sourceOutcome('empty.jpg', 0, 5)).toBe('quarantined');
    expect(store.isKnownSource('x.jpg', 11, 7)).toBe(false);
    expect(store.isKnownSource('y.jpg', 123, 456)).toBe(true); // size and mtime unknown: any match
    const row = store.database.prepare('SELECT quarantined_path, at FROM rejects WHERE id = ?').get(id);
    expect(row).toEqual({ quarantined_path: 'quarantine/empty.jpg', at: T0 + HOUR });
  });

  it('reports the database size', () => {
    store.recordClassified([classified(incoming(fx[0]!, 'a.jpg'), 'copepod', T0)]);
    expect(store.status().dbBytes).toBeGreaterThan(4096);
  });

  it('a writer killed with SIGKILL mid-stream leaves only whole frames: rows, predictions and counts agree', async () => {
    store.close();
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-writer.ts'), dbPath], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // Let it commit a few batches, then kill it without warning, mid-write.
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString();
        if ((seen.match(/batch/g) ?? []).length >= 5) resolve();
      });
      child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));

    store.open();
    const db = store.database;
    const one = (sql: string) => db.prepare(sql).pluck().get() as number;
    const frames = one('SELECT count(*) FROM frames');
    expect(frames).toBeGreaterThanOrEqual(250);
    expect(frames % 50).toBe(0); // whole batches only
    expect(one('SELECT count(*) FROM predictions')).toBe(frames);
    expect(one('SELECT count(*) FROM member_predictions')).toBe(2 * frames);
    expect(one('SELECT count(*) FROM frame_sources')).toBe(frames);
    expect(one('SELECT coalesce(sum(count), 0) FROM counts')).toBe(frames);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  }, 30_000);
});
