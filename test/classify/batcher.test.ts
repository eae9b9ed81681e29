import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/classify/batcher.js';

/** A runner of our own with `room` slots: records each batch, finishes when released. */
function harness(opts: { maxBatch: number; maxWaitMs: number; room: number }) {
  const batches: number[][] = [];
  const waiting: (() => void)[] = [];
  let busy = 0;
  const batcher: Batcher<number, number> = new Batcher<number, number>(
    { maxBatch: opts.maxBatch, maxWaitMs: opts.maxWaitMs, canDispatch: () => busy < opts.room, key: () => 1 },
    (items) => {
      busy++;
      batches.push(items);
      return new Promise((resolve) =>
        waiting.push(() => {
          busy--;
          resolve(items.map((x) => x * 10));
        }),
      );
    },
  );
  const releaseAll = () => {
    for (const w of waiting.splice(0)) w();
  };
  return { batcher, batches, releaseAll };
}

describe('Batcher', { timeout: 5000 }, () => {
  it('sends a full batch at once and never more than maxBatch', async () => {
    const { batcher, batches, releaseAll } = harness({ maxBatch: 4, maxWaitMs: 10_000, room: 10 });
    const results = Array.from({ length: 10 }, (_, i) => batcher.add(i));
    expect(batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(batcher.pending()).toBe(2);
    releaseAll();
    await Promise.all(results.slice(0, 8));
    expect(batches.length).toBe(2); // the last two wait for maxWaitMs (10 s) ...
    const drained = batcher.drain(); // ... unless drained
    expect(batches[2]).toEqual([8, 9]);
    releaseAll();
    await drained;
    expect(await Promise.all(results)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  it('sends a partial batch after maxWaitMs', async () => {
    const { batcher, batches, releaseAll } = harness({ maxBatch: 8, maxWaitMs: 60, room: 10 });
    const t0 = performance.now();
    const r = batcher.add(1);
    void batcher.add(2);
    expect(batches).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(batches).toEqual([]);
    while (batches.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(55);
    expect(waited).toBeLessThan(300);
    expect(batches).toEqual([[1, 2]]);
    releaseAll();
    expect(await r).toBe(10);
  });

  it('holds batches while no runner has room, then sends the largest batch allowed', async () => {
    const { batcher, batches, releaseAll } = harness({ maxBatch: 3, maxWaitMs: 0, room: 1 });
    const all = [batcher.add(1)];
    expect(batches).toEqual([[1]]);
    for (let i = 2; i <= 6; i++) all.push(batcher.add(i));
    expect(batches.length).toBe(1);
    expect(batcher.pending()).toBe(5);
    expect(batcher.running()).toBe(1);
    releaseAll();
    await all[0];
    expect(batches[1]).toEqual([2, 3, 4]);
    releaseAll();
    await all[3];
    expect(batches[2]).toEqual([5, 6]);
    releaseAll();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it('keeps items of different keys in different batches and rejects items without a key', async () => {
    const batches: number[][] = [];
    const batcher = new Batcher<number, number>(
      {
        maxBatch: 10,
        maxWaitMs: 0,
        canDispatch: () => true,
        key: (x) => {
          if (x < 0) throw new Error('no generation');
          return x < 100 ? 1 : 2;
        },
      },
      async (items) => {
        batches.push(items);
        return items;
      },
    );
    const a = batcher.add(1);
    const bad = batcher.add(-1);
    await expect(bad).rejects.toThrow('no generation');
    await a;
    await batcher.drain();
    expect(batches).toEqual([[1]]);
  });
});
