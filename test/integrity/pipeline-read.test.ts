// Issue: the classify step read a file by path after ingest had hashed it. A file swapped in the
// meantime for a link was followed (classifying, say, a file outside the watch folder under the
// hashed frame's SHA-256), a FIFO blocked the read for good, and changed bytes were classified
// under the old hash. The pipeline now reads only a regular file whose bytes match the hash.
// Real files, a real SQLite store; classification is a stub that counts calls (what is under test
// is which bytes reach it, not the labels).
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Pipeline, type Outcome } from '../../src/daemon/pipeline.js';
import { silentLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import type { IncomingFile } from '../../src/types.js';
import { fixtureFiles, put, sha256Of, tempDir } from '../ingest/harness.js';
import { classified as classifiedFrame } from '../store/helpers.js';

const fx = fixtureFiles();

describe('the pipeline reads only the bytes ingest hashed', () => {
  let root: string;
  let cleanup: () => void;
  let store: Store;
  let classified: number;
  let settled: { rel: string; outcome: Outcome; code?: string }[];
  let failed: { rel: string; code: string }[];
  let pipeline: Pipeline;

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir('pipeline-read'));
    store = new Store({ path: join(root, 'pw.sqlite'), countsWindowMs: 60_000, logger: silentLogger() });
    store.open();
    classified = 0;
    settled = [];
    failed = [];
    pipeline = new Pipeline({
      store,
      classifier: {
        inputs: () => [],
        classify: async () => {
          classified++;
          return classifiedFrame(incoming('', '', ''), 'copepod', Date.now()).prediction;
        },
      },
      maxPixels: 25_000_000,
      flushMs: 10,
      maxWriteBatch: 32,
      logger: silentLogger(),
      hooks: {
        settled: (file, outcome, detail) => settled.push({ rel: file.relPath, outcome, code: detail?.code }),
        stored: () => undefined,
        failed: (file, err) => failed.push({ rel: file.relPath, code: (err as { code?: string }).code ?? String(err) }),
      },
    });
  });

  afterEach(() => {
    store.close();
    cleanup();
  });

  function incoming(path: string, relPath: string, sha256: string): IncomingFile {
    const st = statSync(path, { throwIfNoEntry: false });
    return { path, relPath, sha256, bytes: st?.size ?? 0, arrivedAt: Date.now(), mtimeMs: st?.mtimeMs ?? 0 };
  }

  it('a file swapped for a link after hashing is quarantined as a link, not classified', async () => {
    const outside = join(root, 'outside.jpg');
    put(outside, readFileSync(fx[0]!));
    const path = join(root, 'watch', 'a.jpg');
    put(join(root, 'watch', '.keep'), '');
    symlinkSync(outside, path);
    await pipeline.handle(incoming(path, 'a.jpg', sha256Of(outside)));
    expect(classified).toBe(0);
    expect(settled).toEqual([{ rel: 'a.jpg', outcome: 'quarantined', code: 'PW_E_IMAGE_LINK' }]);
    expect(store.status().frames).toBe(0);
  });

  it('bytes that changed after hashing are not classified under the old hash; the file is left for the next scan', async () => {
    const path = join(root, 'watch', 'b.jpg');
    put(path, readFileSync(fx[0]!));
    const hashed = sha256Of(path);
    writeFileSync(path, readFileSync(fx[1]!));
    await pipeline.handle(incoming(path, 'b.jpg', hashed));
    expect(classified).toBe(0);
    expect(settled).toEqual([]);
    expect(failed).toEqual([{ rel: 'b.jpg', code: 'PW_E_IMAGE_MISMATCH' }]);
    expect(store.hasFrame(hashed)).toBe(false);
  });

  it('a FIFO in a file\'s place is quarantined at once instead of blocking the read', async () => {
    const path = join(root, 'watch', 'c.jpg');
    put(join(root, 'watch', '.keep'), '');
    execFileSync('mkfifo', [path]);
    const t0 = Date.now();
    await pipeline.handle(incoming(path, 'c.jpg', sha256Of(fx[2]!)));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(classified).toBe(0);
    expect(settled).toEqual([{ rel: 'c.jpg', outcome: 'quarantined', code: 'PW_E_IMAGE_SPECIAL' }]);
  });

  it('a regular file whose bytes match is classified and stored', async () => {
    const path = join(root, 'watch', 'd.jpg');
    put(path, readFileSync(fx[3]!));
    await pipeline.handle(incoming(path, 'd.jpg', sha256Of(path)));
    expect(classified).toBe(1);
    expect(settled).toEqual([{ rel: 'd.jpg', outcome: 'processed', code: undefined }]);
    expect(store.status().frames).toBe(1);
  });
});
