import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engine/backend.js';
import { runTraining, type TrainRunOptions } from '../../src/learn/train-run.js';
import { predictTable } from '../../src/learn/trainer.js';
import { finishAverage, resetBatchNormStatistics, WeightAverage } from '../../src/learn/weight-average.js';
import { tinyTrainOptions } from '../helpers/training.js';

let tmp = '';

function options(over: Partial<TrainRunOptions>): TrainRunOptions {
  return { ...tinyTrainOptions(path.join(tmp, 'models'), 'plankwatch train (test)'), ...over };
}

/**
 * A conv + batch norm network with the batch norm's moving statistics far from the truth; with
 * `head`, a three-class classifier on top.
 */
function convWithStaleNorm(head = false): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 1] });
  const conv = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', kernelInitializer: tfl.initializers.randomNormal({ mean: 0.5, stddev: 1, seed: 7 }), name: 'c' });
  const bn = tfl.layers.batchNormalization({ name: 'bn' });
  let out = bn.apply(conv.apply(input)) as tfl.SymbolicTensor;
  if (head) {
    out = tfl.layers.globalAveragePooling2d({}).apply(out) as tfl.SymbolicTensor;
    out = tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }).apply(out) as tfl.SymbolicTensor;
  }
  const model = tfl.model({ inputs: input, outputs: out });
  const [gamma, beta] = bn.getWeights();
  bn.setWeights([gamma!, beta!, tf.fill([3], 40), tf.fill([3], 900)]);
  return model;
}

const table = (n: number) => ({ size: 8, pixels: Uint8Array.from({ length: n * 64 }, (_, i) => (i * 7919 + (i >> 6) * 31) % 256), rels: Array.from({ length: n }, (_, i) => `img${i}`) });

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-average-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  await initBackend();
});

describe('stochastic weight averaging', () => {
  it('keeps the running mean of the weights it is given', async () => {
    const model = convWithStaleNorm();
    const average = WeightAverage.empty();
    const seen: Float32Array[][] = [];
    for (const [epoch, value] of [[2, 1], [3, 4], [4, 7]] as const) {
      const weights = model.getWeights().map((w, i) => tf.fill(w.shape, value * (i + 1)));
      model.setWeights(weights);
      seen.push(weights.map((w) => w.dataSync() as Float32Array));
      average.add(model, epoch);
    }
    expect(average.span).toEqual({ count: 3, fromEpoch: 2, toEpoch: 4 });
    const means = average.tensors(model);
    means.forEach((m, i) => expect(Array.from(m.dataSync())).toEqual(new Array(m.size).fill(4 * (i + 1))));

    // Saved and loaded again (a checkpoint), it goes on from where it was.
    await average.save(tmp);
    const loaded = await WeightAverage.load(tmp, average.span);
    expect(loaded.span).toEqual(average.span);
    loaded.tensors(model).forEach((m, i) => expect(Array.from(m.dataSync())).toEqual(Array.from(means[i]!.dataSync())));
    expect((await WeightAverage.load(tmp, undefined)).count).toBe(0);
  });

  it('measures the batch norms again so that each normalises what it now sees', () => {
    const model = convWithStaleNorm();
    const images = table(64);
    const channelStats = () => {
      const out = predictTable(model, images);
      const mean = [0, 0, 0];
      const sq = [0, 0, 0];
      out.forEach((v, i) => {
        mean[i % 3] += v;
        sq[i % 3] += v * v;
      });
      const n = out.length / 3;
      return mean.map((m, c) => ({ mean: m / n, variance: sq[c]! / n - (m / n) ** 2 }));
    };
    expect(Math.max(...channelStats().map((s) => Math.abs(s.mean)))).toBeGreaterThan(1);
    expect(resetBatchNormStatistics(model, images)).toBe(1);
    for (const s of channelStats()) {
      expect(Math.abs(s.mean)).toBeLessThan(1e-3);
      expect(Math.abs(s.variance - 1)).toBeLessThan(1e-2);
    }
  });

  it('gives back the best epoch when the average does not beat it', () => {
    const model = convWithStaleNorm(true);
    const average = WeightAverage.empty();
    average.add(model, 1);
    const images = table(16);
    const labels = Int32Array.from({ length: 16 }, (_, i) => i % 3);
    const validation = { table: images, labels, numClasses: 3 };
    // Without validation images the average is what averaging is for: it is kept.
    const kept = finishAverage(model, average, images, null, { weights: null, loss: -Infinity });
    expect(kept.report.kept).toBe(true);
    tf.dispose(kept.best ?? []);
    const asKept = model.getWeights().map((w) => Array.from(w.dataSync()));

    const better = finishAverage(model, average, images, validation, { weights: null, loss: Infinity });
    expect(better.report.kept).toBe(true);
    expect(better.report.validation!.count).toBe(16);
    tf.dispose(better.best ?? []);

    const worse = finishAverage(model, average, images, validation, { weights: null, loss: -Infinity });
    expect(worse.report.kept).toBe(false);
    expect(worse.best).toBeNull();
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(asKept);
  });

  it('averages a training run from --average-from on, and resumes with the average it had', async () => {
    const whole = await runTraining(options({ version: 'avg', epochs: 4, averageFrom: 2, finalLearningRate: 1 }));
    const a = whole.result.average!;
    expect(a).toMatchObject({ fromEpoch: 2, toEpoch: 4, epochs: 3 });
    expect(whole.result.epochs.map((e) => e.learningRate)).toEqual([0.003, 0.003, 0.003, 0.003]);
    expect(whole.meta.training.finalLearningRate).toBe(1);
    expect(whole.meta.training.average).toMatchObject({ fromEpoch: 2, toEpoch: 4, epochs: 3, kept: a.kept });
    const best = whole.result.epochs.find((e) => e.epoch === whole.result.bestEpoch)!;
    expect(a.kept).toBe(a.validation!.logLoss < best.validation!.logLoss);
    expect(whole.meta.metrics.logLoss).toBe(a.kept ? a.validation!.logLoss : best.validation!.logLoss);

    const first = await runTraining(options({ version: 'avg-r', epochs: 3, averageFrom: 2, finalLearningRate: 1 }));
    expect(first.result.average).toMatchObject({ fromEpoch: 2, toEpoch: 3, epochs: 2 });
    const resumed = await runTraining(options({ version: 'avg-r', epochs: 4, averageFrom: 2, finalLearningRate: 1, resume: true, hooks: { resume: true } }));
    expect(resumed.result.average).toMatchObject({ fromEpoch: 2, toEpoch: 4, epochs: 3 });
    expect(resumed.result.average!.validation!.logLoss).toBeCloseTo(a.validation!.logLoss, 6);
  });
});
