// Ingest wired to a real Store the way the daemon wires them (classification stubbed by a fixed
// prediction: this test is about files and rows, not labels).
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProcessedAction } from '../../src/ingest/ingest.js';
import { silentLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { classified } from '../store/helpers.js';
import { fixtureFiles, makeHarness, put, sha256Of, sleep, tempDir, waitFor, type Harness } from './harness.js';

const fx = fixtureFiles();

describe('Ingest with Store', () => {
  let root: string;
  let cleanup: () => void;
  let store: Store;
  let h: Harness | undefined;

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir('pipeline'));
    store = new Store({ path: join(root, 'db', 'pw.sqlite'), countsWindowMs: 60_000, logger: silentLogger() });
    store.open();
  });

  afterEach(async () => {
    await h?.ingest.stop();
    h = undefined;
    store.close();
    cleanup();
  });

  /** An Ingest whose handlers store results and then finish the file, like the daemon. */
  function wired(onProcessed: ProcessedAction, extra: { rescanIntervalMs?: number } = {}): Harness {
    return makeHarness(root, {
      onProcessed,
      emptyStableMs: 200,
      ...extra,
      isKnown: (rel, size, mtime) => store.sourceOutcome(rel, size, mtime),
      onFile: async (file, hh) => {
        if (store.hasFrame(file.sha256)) {
          store.recordDuplicate(file);
          await hh.ingest.finish(file, 'duplicate');
        } else {
          store.recordClassified([classified(file, 'copepod', Date.now())]);
          await hh.ingest.finish(file, 'processed');
        }
      },
      onReject: async (r, hh) => {
        const id = store.recordReject({ relPath: r.relPath, code: r.code, detail: r.detail, bytes: r.bytes, mtimeMs: r.mtimeMs });
        const done = await hh.ingest.finish(r, 'quarantined');
        if (done.dest) store.setQuarantinedPath(id, done.dest);
      },
    });
  }

  it('the same bytes under a second name are a duplicate: one frame, two sources, both archived', async () => {
    h = wired('archive');
    await h.ingest.start();
    put(join(h.watchDir, 'a', 'first.jpg'), readFileSync(fx[0]!));
    await waitFor(() => store.status().frames === 1, 8000, 'first stored');
    put(join(h.watchDir, 'b', 'second.jpg'), readFileSync(fx[0]!));
    await waitFor(() => store.status().duplicates === 1, 8000, 'duplicate recorded');
    await waitFor(() => h!.ingest.stats().pending === 0, 4000, 'settled');
    expect(store.status()).toMatchObject({ frames: 1, predictions: 1, duplicates: 1 });
    expect(store.countsSince(0).total).toBe(1);
    expect(existsSync(join(h.archiveDir, 'a', 'first.jpg'))).toBe(true);
    expect(existsSync(join(h.archiveDir, 'b', 'second.jpg'))).toBe(true);
    const sources = store.database.prepare('SELECT rel_path, role FROM frame_sources ORDER BY id').all();
    expect(sources).toEqual([
      { rel_path: 'a/first.jpg', role: 'original' },
      { rel_path: 'b/second.jpg', role: 'duplicate' },
    ]);
  });

  it('after a restart, files already stored are not emitted again; a rewritten file is', async () => {
    h = wired('leave');
    fx.slice(0, 3).forEach((f, i) => put(join(h!.watchDir, `f${i}.jpg`), readFileSync(f)));
    await h.ingest.start();
    await waitFor(() => store.status().frames === 3, 8000, 'three stored');
    await h.ingest.stop();

    // A new process: same folder, same database.
    store.close();
    store.open();
    h = wired('leave', { rescanIntervalMs: 100 });
    await h.ingest.start();
    await sleep(800); // the scan at start plus several rescans
    expect(h.files).toEqual([]);

    // Overwritten in place with other bytes: a new frame.
    writeFileSync(join(h.watchDir, 'f1.jpg'), readFileSync(fx[4]!));
    await waitFor(() => h!.files.length === 1, 8000, 're-emission');
    expect(h.files[0]!.sha256).toBe(sha256Of(fx[4]!));
    await waitFor(() => store.status().frames === 4, 4000, 'fourth stored');
  });

  it('a file stored but not yet archived when the process died is archived at restart, not classified again', async () => {
    h = wired('archive');
    const path = join(h.watchDir, 'tow', 'late.jpg');
    put(path, readFileSync(fx[2]!));
    const st = statSync(path);
    // What the dead process managed: the transaction committed, the move did not happen.
    const file = { path, relPath: 'tow/late.jpg', sha256: sha256Of(path), bytes: st.size, arrivedAt: Date.now(), mtimeMs: st.mtimeMs };
    store.recordClassified([classified(file, 'copepod', Date.now())]);
    await h.ingest.start();
    await waitFor(() => existsSync(join(h!.archiveDir, 'tow', 'late.jpg')), 8000, 'archived at restart');
    expect(h.files).toEqual([]);
    expect(store.status()).toMatchObject({ frames: 1, predictions: 1 });
  });

  it('an empty file is stored as a reject with its quarantine path, and not rejected again', async () => {
    h = wired('leave', { rescanIntervalMs: 100 });
    put(join(h.watchDir, 'e.jpg'), '');
    await h.ingest.start();
    await waitFor(() => store.status().rejects.total === 1, 8000, 'reject stored');
    await waitFor(() => h!.ingest.stats().pending === 0, 4000, 'settled');
    const row = store.database.prepare('SELECT rel_path, code, quarantined_path FROM rejects').get();
    expect(row).toEqual({ rel_path: 'e.jpg', code: 'PW_E_IMAGE_EMPTY', quarantined_path: join(h.quarantineDir, 'e.jpg') });
    expect(readdirSync(h.watchDir)).toEqual([]);
    await sleep(500);
    expect(store.status().rejects.total).toBe(1);
  });
});
