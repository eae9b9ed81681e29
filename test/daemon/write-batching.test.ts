// When the pipeline writes classified frames: at once when nothing else is on its way to the
// write batch (an idle pipeline does not hold a frame for store.flushMs), in batches when many
// frames arrive together. Real JPEGs, the shipped ensemble on ONNX Runtime, a real SQLite file.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Classifier } from '../../src/classify/classifier.js';
import { Pipeline } from '../../src/daemon/pipeline.js';
import { silentLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import type { IncomingFile } from '../../src/types.js';
import { sha256Of, tempDir } from '../ingest/harness.js';
import { fixtureFiles } from '../onnx/helpers.js';

const REPO = resolve(import.meta.dirname, '..', '..');
/** Far longer than an idle frame needs from hand-over to stored row. */
const FLUSH_MS = 3000;

let classifier: Classifier;

beforeAll(async () => {
  classifier = new Classifier({
    ensembleFile: join(REPO, 'models', 'ensemble.json'),
    modelsDir: join(REPO, 'models'),
    backend: 'onnx',
    workers: 1,
    maxBatch: 32,
    maxWaitMs: 25,
    topK: 3,
    logger: silentLogger(),
  });
  await classifier.start();
}, 120_000);

afterAll(async () => {
  await classifier?.stop();
});

/**
 * The n-th distinct copy of a fixture JPEG: a comment segment with a counter after the
 * start-of-image marker, so every copy is a whole, different image.
 */
function distinct(source: Buffer, n: number): Buffer {
  const segment = Buffer.alloc(8);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(6, 2);
  segment.writeUInt32BE(n, 4);
  return Buffer.concat([source.subarray(0, 2), segment, source.subarray(2)]);
}

describe('pipeline write batching', () => {
  let root: string;
  let cleanup: () => void;
  let store: Store;
  let pipeline: Pipeline;
  let writes: number[];

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir('write-batching'));
    store = new Store({ path: join(root, 'pw.sqlite'), countsWindowMs: 60_000, logger: silentLogger() });
    store.open();
    writes = [];
    pipeline = make(256);
  });

  function make(maxWriteBatch: number): Pipeline {
    return new Pipeline({
      store,
      classifier,
      maxPixels: 25_000_000,
      flushMs: FLUSH_MS,
      maxWriteBatch,
      logger: silentLogger(),
      hooks: {
        settled: () => undefined,
        stored: (frames) => void writes.push(frames.length),
        failed: (file, err) => {
          throw new Error(`${file.relPath} failed: ${String(err)}`);
        },
      },
    });
  }

  afterEach(async () => {
    await pipeline.stop();
    store.close();
    cleanup();
  });

  function file(n: number): IncomingFile {
    const sources = fixtureFiles();
    const path = join(root, `frame-${n}.jpg`);
    const bytes = distinct(readFileSync(sources[n % sources.length]!), n);
    writeFileSync(path, bytes);
    return { path, relPath: `frame-${n}.jpg`, sha256: sha256Of(path), bytes: bytes.length, arrivedAt: Date.now(), mtimeMs: Date.now() };
  }

  it('a single frame on an idle pipeline is stored without waiting store.flushMs', async () => {
    await pipeline.handle(file(0)); // warm-up: the first batch of a fresh session is slower
    const t0 = Date.now();
    await pipeline.handle(file(1));
    const took = Date.now() - t0;
    expect(store.status().frames).toBe(2);
    expect(took).toBeLessThan(FLUSH_MS / 2);
    expect(writes).toEqual([1, 1]);
  }, 60_000);

  it('frames that arrive together are still written in batches', async () => {
    const files = Array.from({ length: 96 }, (_, i) => file(i));
    await Promise.all(files.map((f) => pipeline.handle(f)));
    expect(store.status().frames).toBe(96);
    expect(writes.reduce((a, b) => a + b, 0)).toBe(96);
    // One write per inference batch at most (32 frames each), never one per frame.
    expect(writes.length).toBeLessThanOrEqual(6);
  }, 60_000);

  it('behind a backlog of more than a write batch, frames wait to fill whole batches', async () => {
    pipeline = make(16);
    const files = Array.from({ length: 96 }, (_, i) => file(i));
    await Promise.all(files.map((f) => pipeline.handle(f)));
    expect(store.status().frames).toBe(96);
    expect(writes.reduce((a, b) => a + b, 0)).toBe(96);
    expect(writes.slice(0, 4)).toEqual([16, 16, 16, 16]); // the backlog is at least a batch until then
  }, 60_000);
});
