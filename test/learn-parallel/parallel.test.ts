import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readMeta, verifyChecksums } from '../../src/classify/model-files.js';
import { DEFAULT_AUGMENT } from '../../src/learn/augment.js';
import { parseMix } from '../../src/learn/mix.js';
import { readDataset } from '../../src/learn/dataset.js';
import { readDatasetOrManifest, runParallelTraining, writeDatasetManifest, type ParallelRunOptions } from '../../src/learn/parallel/run.js';
import { shardSizes } from '../../src/learn/parallel/pool.js';
import { readFlat, subsetSize } from '../../src/learn/parallel/replica.js';
import { FIXTURES, tinyTrainOptions } from '../helpers/training.js';
import { runTraining } from '../../src/learn/train-run.js';

let tmp = '';

function options(over: Partial<ParallelRunOptions>): ParallelRunOptions {
  return { ...tinyTrainOptions(path.join(tmp, 'models'), 'plankwatch train --workers 2 (test)'), workers: 2, ...over };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-parallel-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
});

describe('data-parallel training', () => {
  it('cuts a batch into shards as even as possible', () => {
    expect(shardSizes(32, 2)).toEqual([16, 16]);
    expect(shardSizes(240, 15)).toEqual(new Array(15).fill(16));
    expect(shardSizes(10, 4)).toEqual([3, 3, 2, 2]);
  });

  it('with one worker computes what the single-thread trainer computes, weight average included', async () => {
    const common = { epochs: 2, augment: DEFAULT_AUGMENT, weightDecay: 1e-4, averageFrom: 1 };
    const serial = await runTraining(options({ ...common, version: 'serial' }));
    const parallel = await runParallelTraining(options({ ...common, version: 'one', workers: 1 }));
    const a = serial.result.epochs;
    const b = parallel.result.epochs;
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) {
      expect(b[i]!.trainLoss).toBeCloseTo(a[i]!.trainLoss, 4);
      expect(b[i]!.trainAccuracy).toBeCloseTo(a[i]!.trainAccuracy, 6);
      expect(b[i]!.validation!.logLoss).toBeCloseTo(a[i]!.validation!.logLoss, 3);
    }
    expect(parallel.result.average).toMatchObject({ fromEpoch: 1, toEpoch: 2, epochs: 2, kept: serial.result.average!.kept });
    expect(parallel.result.average!.validation!.logLoss).toBeCloseTo(serial.result.average!.validation!.logLoss, 3);
  });

  /** The plain run (no teacher, no mixing) on one worker, trained once for the tests below. */
  let plain: Promise<Awaited<ReturnType<typeof runParallelTraining>>> | null = null;

  /**
   * Train with `over` on one thread and on one worker: the losses must agree epoch by epoch, and
   * differ from the plain run's (the targets `over` makes reach the worker).
   */
  async function oneWorkerAsOneThread(over: Partial<ParallelRunOptions>, name: string) {
    const common = { epochs: 2, augment: DEFAULT_AUGMENT, ...over };
    const serial = await runTraining(options({ ...common, version: `${name}-serial` }));
    const parallel = await runParallelTraining(options({ ...common, version: `${name}-one`, workers: 1 }));
    plain ??= runParallelTraining(options({ epochs: 2, augment: DEFAULT_AUGMENT, version: 'plain-one', workers: 1 }));
    const base = (await plain).result.epochs;
    const a = serial.result.epochs;
    const b = parallel.result.epochs;
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) {
      expect(b[i]!.trainLoss).toBeCloseTo(a[i]!.trainLoss, 4);
      expect(b[i]!.validation!.logLoss).toBeCloseTo(a[i]!.validation!.logLoss, 3);
      expect(Math.abs(b[i]!.trainLoss - base[i]!.trainLoss)).toBeGreaterThan(1e-3);
    }
    return { parallel, plain: await plain };
  }

  it('distils: with one worker and a teacher, computes what the single-thread trainer computes', async () => {
    // The teacher: a member trained on this split, voting over the image and its quarter turn.
    await runTraining(options({ version: 'teacher', epochs: 2 }));
    const teacher = path.join(tmp, 'models', 'teacher.json');
    await writeFile(teacher, JSON.stringify({ version: 't', voting: 'soft', tta: ['identity', 'rot90'], members: [{ name: 'tiny', version: 'teacher' }] }));
    const { parallel } = await oneWorkerAsOneThread({ teacher, distill: 0.6 }, 'taught');
    expect(parallel.meta.training.teacher).toEqual({ ensemble: teacher, version: 't', members: ['tiny/teacher'], distill: 0.6 });
  });

  it('mixes: with one worker and CutMix, computes what the single-thread trainer computes', async () => {
    const { parallel, plain } = await oneWorkerAsOneThread({ mix: parseMix('cutmix,alpha=1') }, 'mixed');
    expect(parallel.meta.training.mix).toEqual({ kind: 'cutmix', alpha: 1, probability: 1 });
    expect(plain.meta.training.mix).toBeUndefined();
  });

  it('with two workers lowers the loss, keeps the replicas identical, and writes a normal version folder', async () => {
    let previous: Float32Array | null = null;
    let checked = 0;
    const { dir, meta, result } = await runParallelTraining(
      options({
        version: 'two',
        hooks: {
          // After each step: every replica holds the weights the main thread sent with that step
          // (its weights after the previous step), and the main thread's moving statistics are
          // the shard-size-weighted mean of the replicas'.
          onStep: async (pool, layout) => {
            const replicas = await pool.weights();
            const main = readFlat(layout);
            if (previous) {
              for (const r of replicas) {
                for (const i of layout.trainable) {
                  const o = layout.offsets[i]!;
                  expect(r.subarray(o, o + layout.sizes[i]!)).toEqual(previous.subarray(o, o + layout.sizes[i]!));
                }
              }
              const sizes = shardSizes(8, replicas.length);
              for (const i of layout.nonTrainable) {
                const o = layout.offsets[i]!;
                for (let j = 0; j < layout.sizes[i]!; j++) {
                  const mean = replicas.reduce((m, r, k) => m + (r[o + j]! * sizes[k]!) / 8, 0);
                  expect(main[o + j]!).toBeCloseTo(mean, 5);
                }
              }
              checked++;
            }
            previous = main;
            expect(subsetSize(layout, layout.trainable) + subsetSize(layout, layout.nonTrainable)).toBe(layout.total);
          },
        },
      }),
    );
    expect(checked).toBeGreaterThan(10);
    expect(result.epochs.length).toBe(6);
    expect(result.epochs[5]!.trainLoss).toBeLessThan(result.epochs[0]!.trainLoss);
    expect(meta.training.workers).toBe(2);
    expect(meta.training.seed).toBe(3);
    expect(meta.training.command).toContain('--workers 2');
    expect(meta.metrics.evaluatedOn).toBe(24);
    expect(await verifyChecksums(dir, await readMeta(dir))).toEqual([]);
  });

  it('resumes from its checkpoint, and trains from a dataset manifest with the image cache', async () => {
    const first = await runParallelTraining(options({ version: 'r', epochs: 2 }));
    expect(first.result.epochs.length).toBe(2);
    const manifest = path.join(tmp, 'ndsb.manifest.json');
    await writeDatasetManifest(manifest, await readDataset(FIXTURES));
    expect((await readDatasetOrManifest(manifest)).fingerprint).toBe(first.meta.training.dataFingerprint);
    const resumed = await runParallelTraining(options({ version: 'r', epochs: 3, resume: true, data: manifest, hooks: { resume: true } }));
    expect(resumed.result.epochs.length).toBe(3);
    expect(resumed.result.epochs.slice(0, 2)).toEqual(first.result.epochs);
    expect(resumed.meta.training.commandHistory).toHaveLength(2);
  });

  it('under --schedule time reports the rate its steps took, by the clock', async () => {
    // Ten minutes of budget and two short epochs: by the clock the rate has barely moved; by the
    // epochs (what the report said before) the second would be near the end of its decay.
    const { result } = await runParallelTraining(options({ version: 'timed', epochs: 2, fitToTime: true, maxMinutes: 10, learningRate: 0.003 }));
    const rates = result.epochs.map((e) => e.learningRate);
    expect(rates).toHaveLength(2);
    expect(rates[1]!).toBeLessThan(rates[0]!);
    expect(rates[1]!).toBeGreaterThan(0.003 * 0.95);
  }, 120_000);
});
