import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Store, type RecordResult } from '../../src/store/store.js';
import { WriteBuffer } from '../../src/store/write-buffer.js';
import type { ClassifiedFrame } from '../../src/types.js';
import { classified, fixtureFiles, incoming, tempDir } from './helpers.js';

const fx = fixtureFiles();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('WriteBuffer', () => {
  let cleanup: () => void;
  let store: Store;
  let flushed: RecordResult[];
  let failed: ClassifiedFrame[][];

  beforeEach(() => {
    let dir: string;
    ({ dir, cleanup } = tempDir('wbuf'));
    store = new Store({ path: join(dir, 'pw.sqlite'), countsWindowMs: 60_000, logger: silentLogger() });
    store.open();
    flushed = [];
    failed = [];
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  const handlers = () => ({ onFlushed: (r: RecordResult) => void flushed.push(r), onFailed: (b: ClassifiedFrame[]) => void failed.push(b) });
  const frames = () => fx.map((f, i) => classified(incoming(f, `w${i}.jpg`), 'copepod', 1_700_000_000_000));

  it('writes a full batch at once, one transaction', () => {
    const buf = new WriteBuffer(store, { flushMs: 60_000, maxBatch: 5, logger: silentLogger() }, handlers());
    for (const c of frames().slice(0, 4)) buf.add(c);
    expect(store.status().frames).toBe(0);
    buf.add(frames()[4]!);
    expect(store.status().frames).toBe(5);
    expect(flushed).toHaveLength(1);
    expect(flushed[0]!.stored).toHaveLength(5);
    buf.stop();
  });

  it('writes a partial batch after flushMs', async () => {
    const buf = new WriteBuffer(store, { flushMs: 50, maxBatch: 100, logger: silentLogger() }, handlers());
    buf.add(frames()[0]!);
    buf.add(frames()[1]!);
    expect(buf.size).toBe(2);
    await sleep(150);
    expect(buf.size).toBe(0);
    expect(store.status().frames).toBe(2);
    expect(flushed).toHaveLength(1);
  });

  it('hands a batch that could not be written back, storing none of it', () => {
    const buf = new WriteBuffer(store, { flushMs: 60_000, logger: silentLogger() }, handlers());
    const [a, b] = frames();
    b!.prediction.probability = Number.NaN; // violates NOT NULL
    buf.add(a!);
    buf.add(b!);
    buf.stop();
    expect(failed).toHaveLength(1);
    expect(failed[0]).toHaveLength(2);
    expect(store.status().frames).toBe(0);
  });
});
