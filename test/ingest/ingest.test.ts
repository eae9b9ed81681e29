import sharp from 'sharp';
import { appendFileSync, chmodSync, existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixtureFiles, makeHarness, put, sha256Of, sleep, tempDir, waitFor, type Harness } from './harness.js';

const fx = fixtureFiles();

describe('Ingest', () => {
  let root: string;
  let cleanup: () => void;
  let h: Harness | undefined;

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir('ingest'));
  });

  afterEach(async () => {
    await h?.ingest.stop();
    h = undefined;
    cleanup();
  });

  it('creates its folders and finds files already there at start, in subfolders, once each', async () => {
    h = makeHarness(root);
    const names = fx.map((f, i) => (i % 2 ? `tow1/cast${i}/${basename(f)}` : basename(f)));
    fx.forEach((f, i) => put(join(h!.watchDir, names[i]!), readFileSync(f)));
    const before = Date.now();
    await h.ingest.start();
    expect(existsSync(h.archiveDir) && existsSync(h.quarantineDir)).toBe(true);
    await waitFor(() => h!.files.length === fx.length, 8000, 'all fixtures');
    await sleep(400);
    expect(h.files).toHaveLength(fx.length);
    const byRel = new Map(h.files.map((f) => [f.relPath, f]));
    fx.forEach((f, i) => {
      const got = byRel.get(names[i]!);
      expect(got, names[i]).toBeDefined();
      expect(got!.sha256).toBe(sha256Of(f));
      expect(got!.bytes).toBe(statSync(f).size);
      expect(got!.path).toBe(join(h!.watchDir, names[i]!));
      expect(got!.mtimeMs).toBe(Math.trunc(statSync(got!.path).mtimeMs));
      expect(got!.arrivedAt).toBeGreaterThanOrEqual(before);
      expect(got!.arrivedAt).toBeLessThanOrEqual(got!.emittedAt);
    });
    expect(h.rejects).toEqual([]);
  });

  it('processes a write-then-rename file once, and never the temp or hidden names', async () => {
    h = makeHarness(root);
    await h.ingest.start();
    const data = readFileSync(fx[0]!);
    const tmp = join(h.watchDir, 'sub', 'frame-001.jpg.tmp');
    put(tmp, data.subarray(0, 100));
    await sleep(150);
    appendFileSync(tmp, data.subarray(100));
    put(join(h.watchDir, 'sub', 'frame-002.jpg.part'), data);
    put(join(h.watchDir, '.frame-003.jpg'), data);
    put(join(h.watchDir, '.staging', 'frame-004.jpg'), data);
    await sleep(600); // longer than stableMs: temp names would have been taken by now
    expect(h.files).toEqual([]);
    renameSync(tmp, join(h.watchDir, 'sub', 'frame-001.jpg'));
    await waitFor(() => h!.files.length === 1, 8000, 'renamed file');
    await h.ingest.rescan(); // a scan after the event must not emit it again
    await sleep(500);
    expect(h.files.map((f) => f.relPath)).toEqual(['sub/frame-001.jpg']);
    expect(h.files[0]!.sha256).toBe(sha256Of(fx[0]!));
  });

  it('does not emit a slow in-place writer before it has finished (300 ms pauses, stableMs 1000)', async () => {
    h = makeHarness(root, { stableMs: 1000, pollMs: 50 });
    await h.ingest.start();
    const data = Buffer.concat(fx.map((f) => readFileSync(f))); // ~5.5 KB in 8 chunks
    const path = join(h.watchDir, 'slow.jpg');
    const chunk = Math.ceil(data.length / 8);
    writeFileSync(path, data.subarray(0, chunk));
    for (let off = chunk; off < data.length; off += chunk) {
      await sleep(300);
      expect(h.files, `emitted while still being written (offset ${off})`).toEqual([]);
      appendFileSync(path, data.subarray(off, off + chunk));
    }
    const lastWrite = Date.now();
    await waitFor(() => h!.files.length === 1, 8000, 'slow file');
    const got = h.files[0]!;
    // It ends with a JPEG end-of-image marker and stopped growing: taken at once, never before the last write.
    expect(got.emittedAt).toBeGreaterThanOrEqual(lastWrite);
    expect(got.emittedAt - lastWrite).toBeLessThan(900);
    expect(got.bytes).toBe(data.length);
    expect(got.sha256).toBe(sha256Of(path));
    await sleep(300);
    expect(h.files).toHaveLength(1);
  }, 20_000);

  it('waits the full stableMs for a file with no end marker to check (TIFF written in place)', async () => {
    h = makeHarness(root, { stableMs: 1000, pollMs: 50 });
    await h.ingest.start();
    const data = await sharp(readFileSync(fx[0]!)).tiff().toBuffer();
    const path = join(h.watchDir, 'slow.tif');
    const chunk = Math.ceil(data.length / 4);
    writeFileSync(path, data.subarray(0, chunk));
    for (let off = chunk; off < data.length; off += chunk) {
      await sleep(300);
      expect(h.files, `emitted while still being written (offset ${off})`).toEqual([]);
      appendFileSync(path, data.subarray(off, off + chunk));
    }
    const lastWrite = Date.now();
    await waitFor(() => h!.files.length === 1, 8000, 'slow file');
    expect(h.files[0]!.emittedAt - lastWrite).toBeGreaterThanOrEqual(900);
    expect(h.files[0]!.bytes).toBe(data.length);
  }, 20_000);

  it('rejects a 0-byte file with PW_E_IMAGE_EMPTY and quarantines it on finish', async () => {
    h = makeHarness(root, {
      emptyStableMs: 300,
      onReject: async (r, hh) => void (await hh.ingest.finish(r, 'quarantined')),
    });
    put(join(h.watchDir, 'cam', 'empty.jpg'), '');
    await h.ingest.start();
    await waitFor(() => h!.rejects.length === 1, 8000, 'reject');
    const r = h.rejects[0]!;
    expect(r).toMatchObject({ relPath: 'cam/empty.jpg', code: 'PW_E_IMAGE_EMPTY', bytes: 0, sha256: null });
    expect(h.files).toEqual([]);
    await waitFor(() => existsSync(join(h!.quarantineDir, 'cam', 'empty.jpg')), 4000, 'quarantined file');
    expect(existsSync(join(h.watchDir, 'cam', 'empty.jpg'))).toBe(false);
    expect(h.lines.some((l) => l.code === 'PW_E_IMAGE_EMPTY' && l.module === 'ingest')).toBe(true);
  });

  it('holds at most maxPending files; the rest are taken as slots free', async () => {
    const maxPending = 2;
    h = makeHarness(root, { maxPending });
    for (let i = 0; i < 7; i++) put(join(h.watchDir, `f${i}.jpg`), readFileSync(fx[i % fx.length]!));
    // Same bytes under several names is fine here: ingest does not deduplicate content.
    await h.ingest.start();
    let finished = 0;
    while (finished < 7) {
      await waitFor(() => h!.files.length > finished, 8000, `file ${finished + 1}`);
      await sleep(300); // give ingest every chance to exceed the limit
      const outstanding = h.files.length - finished;
      expect(outstanding).toBeLessThanOrEqual(maxPending);
      expect(h.ingest.stats().pending).toBeLessThanOrEqual(maxPending);
      await h.ingest.finish(h.files[finished]!, 'processed');
      finished += 1;
    }
    const rels = h.files.map((f) => f.relPath).sort();
    expect(rels).toEqual(Array.from({ length: 7 }, (_, i) => `f${i}.jpg`));
    expect(h.ingest.stats()).toMatchObject({ pending: 0, deferred: 0, emitted: 7, finished: 7 });
  }, 30_000);

  it('polling mode (no inotify): a file made after start, in a new folder, is found by the scan every second', async () => {
    h = makeHarness(root, { usePolling: true, rescanIntervalMs: 0 });
    await h.ingest.start();
    await sleep(100); // the scan at start is done: only a later scan can find what comes now
    put(join(h.watchDir, 'tow3', 'p.jpg'), readFileSync(fx[0]!));
    await waitFor(() => h!.files.length === 1, 5000, 'the file found by polling');
    expect(h.files[0]!.relPath).toBe('tow3/p.jpg');
    await h.ingest.finish(h.files[0]!, 'processed');
  });

  it('never emits a held path twice, however often it is noticed', async () => {
    h = makeHarness(root, { rescanIntervalMs: 50 });
    await h.ingest.start();
    put(join(h.watchDir, 'a.jpg'), readFileSync(fx[0]!));
    await waitFor(() => h!.files.length === 1, 8000, 'first emission');
    for (let i = 0; i < 5; i++) {
      await h.ingest.rescan();
      await sleep(60);
    }
    expect(h.files).toHaveLength(1); // held (not finished): never handed on again
    await h.ingest.finish(h.files[0]!, 'processed');
  });

  it('skips files the store knows, and finishes the disposal of a known file still in the folder', async () => {
    const known = new Map<string, 'processed' | 'quarantined'>([
      ['done.jpg', 'processed'],
      ['bad.jpg', 'quarantined'],
    ]);
    h = makeHarness(root, { onProcessed: 'archive', isKnown: (rel) => known.get(rel) ?? false });
    put(join(h.watchDir, 'done.jpg'), readFileSync(fx[0]!));
    put(join(h.watchDir, 'bad.jpg'), readFileSync(fx[1]!));
    put(join(h.watchDir, 'new.jpg'), readFileSync(fx[2]!));
    await h.ingest.start();
    await waitFor(() => h!.files.length === 1, 8000, 'new file');
    await waitFor(() => existsSync(join(h!.archiveDir, 'done.jpg')) && existsSync(join(h!.quarantineDir, 'bad.jpg')), 4000, 'recovery moves');
    expect(h.files.map((f) => f.relPath)).toEqual(['new.jpg']);
    expect(readdirSync(h.watchDir).sort()).toEqual(['new.jpg']);
  });

  it('never watches archive and quarantine folders inside the watch folder', async () => {
    const watchDir = join(root, 'incoming');
    h = makeHarness(root, {
      watchDir,
      archiveDir: join(watchDir, 'archive'),
      quarantineDir: join(watchDir, 'quarantine'),
      onProcessed: 'archive',
      rescanIntervalMs: 100,
      onFile: async (f, hh) => void (await hh.ingest.finish(f, 'processed')),
    });
    put(join(watchDir, 'quarantine', 'old.jpg'), readFileSync(fx[3]!));
    await h.ingest.start();
    put(join(watchDir, 'x', 'a.jpg'), readFileSync(fx[0]!));
    await waitFor(() => existsSync(join(watchDir, 'archive', 'x', 'a.jpg')), 8000, 'archived');
    await sleep(700); // several rescans and watch events for the archived copy
    expect(h.files.map((f) => f.relPath)).toEqual(['x/a.jpg']);
  });

  it('a backlog larger than the pending and deferred limits is processed completely, each file once', async () => {
    h = makeHarness(root, {
      maxPending: 8,
      maxDeferred: 10,
      onFile: async (f, hh) => {
        await sleep(2); // a consumer slower than the scan
        await hh.ingest.finish(f, 'processed');
      },
      onProcessed: 'delete',
    });
    const n = 150;
    for (let i = 0; i < n; i++) put(join(h.watchDir, `d${i % 5}`, `img${i}.jpg`), Buffer.concat([readFileSync(fx[i % fx.length]!), Buffer.from(String(i))]));
    await h.ingest.start();
    await waitFor(() => h!.ingest.stats().finished === n, 20_000, 'whole backlog');
    const rels = h.files.map((f) => f.relPath);
    expect(new Set(rels).size).toBe(n);
    expect(rels).toHaveLength(n);
    expect(new Set(h.files.map((f) => f.sha256)).size).toBe(n);
    for (let i = 0; i < 5; i++) expect(readdirSync(join(h.watchDir, `d${i}`))).toEqual([]);
  }, 30_000);

  it.skipIf(process.getuid?.() === 0)('rejects a file it may not read with PW_E_IMAGE_UNREADABLE (not testable as root)', async () => {
    h = makeHarness(root);
    const path = join(h.watchDir, 'locked.jpg');
    put(path, readFileSync(fx[0]!));
    chmodSync(path, 0o000);
    await h.ingest.start();
    await waitFor(() => h!.rejects.length === 1, 8000, 'reject');
    expect(h.rejects[0]).toMatchObject({ relPath: 'locked.jpg', code: 'PW_E_IMAGE_UNREADABLE', sha256: null });
    expect(h.files).toEqual([]);
  });
});
