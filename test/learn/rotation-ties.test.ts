import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { foldModel } from '../../src/classify/folded-model.js';
import { folderIO, readMeta } from '../../src/classify/model-files.js';
import { DEFAULT_AUGMENT } from '../../src/learn/augment.js';
import { buildModel } from '../../src/learn/architectures.js';
import { initBackend } from '../../src/engine/backend.js';
import { trainParallel } from '../../src/learn/parallel/trainer.js';
import type { ImageTable } from '../../src/learn/image-cache.js';
import { orbitMean, rotationTies, tieWeights, type RotationTies } from '../../src/engine/rotation-ties.js';
import { train, type TrainConfig, type TrainData } from '../../src/learn/trainer.js';
import { runAverage } from '../../src/learn/average-run.js';
import { runTraining, type TrainRunOptions } from '../../src/learn/train-run.js';
import { resetBatchNormStatistics } from '../../src/learn/weight-average.js';
import { FIXTURES, tinyTrainOptions } from '../helpers/training.js';

let tmp = '';

function options(over: Partial<TrainRunOptions>): TrainRunOptions {
  return { ...tinyTrainOptions(path.join(tmp, 'models'), 'plankwatch train --arch pw-p4-tiny-32 (test)'), architecture: 'pw-p4-tiny-32', ...over };
}

/** A quarter turn of each image of a batch [n, h, w, 1]. */
const quarterTurn = (x: tf.Tensor4D) => tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 2) as tf.Tensor4D;

/** Largest difference between the probabilities of the images and of their 1, 2 and 3 quarter turns. */
function turnDifference(model: { predict(x: tf.Tensor4D): tf.Tensor | tf.Tensor[] }): number {
  return tf.tidy(() => {
    const x = tf.randomUniform([6, 32, 32, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
    const base = model.predict(x) as tf.Tensor;
    let turned = x;
    let worst = 0;
    for (let k = 1; k < 4; k++) {
      turned = quarterTurn(turned);
      worst = Math.max(worst, tf.max(tf.abs(tf.sub(model.predict(turned) as tf.Tensor, base))).dataSync()[0]!);
    }
    return worst;
  });
}

/** 32 px images brighter on their left, so that their quarter turns do not look alike. */
function orientedTable(n: number): ImageTable {
  const s = 32;
  const pixels = Uint8Array.from({ length: n * s * s }, (_, k) => {
    const [i, y, x] = [Math.floor(k / (s * s)), Math.floor(k / s) % s, k % s];
    return (x < s / 2 ? 200 : 20) + ((i * 31 + y * 7 + x * 13) % 40);
  });
  return { size: s, pixels, rels: Array.from({ length: n }, (_, i) => `img${i}`) };
}

/** Each image of the table followed by its three quarter turns. */
function withTurns(table: ImageTable): ImageTable {
  const s = table.size;
  const n = table.rels.length;
  const pixels = new Uint8Array(4 * n * s * s);
  for (let i = 0; i < n; i++)
    for (let r = 0; r < 4; r++)
      for (let y = 0; y < s; y++)
        for (let x = 0; x < s; x++) {
          // r quarter turns of (y, x): (x, s-1-y) applied r times.
          let [ty, tx] = [y, x];
          for (let k = 0; k < r; k++) [ty, tx] = [tx, s - 1 - ty];
          pixels[((4 * i + r) * s + ty) * s + tx] = table.pixels[(i * s + y) * s + x]!;
        }
  return { size: s, pixels, rels: Array.from({ length: 4 * n }, (_, i) => `img${i}`) };
}

const batchNormStatistics = (model: tfl.LayersModel) =>
  model.layers.filter((l) => l.getClassName() === 'BatchNormalization').flatMap((l) => l.getWeights().slice(2).map((w) => Float32Array.from(w.dataSync() as Float32Array)));

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-ties-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  await initBackend();
});

describe('quarter-turn ties', () => {
  it('a tied network gives the same probabilities for an image and its quarter turns; an untied one does not', () => {
    const tied = buildModel('pw-p4-tiny-32', { numClasses: 5, seed: 4 });
    const plain = buildModel('pw-p4-tiny-32', { numClasses: 5, seed: 4 });
    const ties = rotationTies(tied);
    // Every convolution, every batch norm's four vectors and the dense layer after the flatten.
    expect(ties.size).toBe(3 + 3 * 4 + 1);
    tieWeights(tied, ties, true);
    expect(turnDifference(tied)).toBeLessThan(2e-6);
    expect(turnDifference(plain)).toBeGreaterThan(1e-3);
  });

  it('keeps the spread of fresh kernels, and tying twice changes nothing', () => {
    const model = buildModel('pw-p4-tiny-32', { numClasses: 5, seed: 4 });
    const kernel = () => model.getLayer('b2c1_conv').getWeights()[0]!.dataSync() as Float32Array;
    const std = (v: Float32Array) => Math.sqrt(v.reduce((s, a) => s + a * a, 0) / v.length);
    const before = std(kernel());
    const ties = rotationTies(model);
    tieWeights(model, ties, true);
    const once = kernel().slice();
    expect(std(once) / before).toBeGreaterThan(0.8);
    expect(std(once) / before).toBeLessThan(1.2);
    tieWeights(model, ties);
    expect(Array.from(kernel())).toEqual(Array.from(once));
  });

  it('an orbit mean averages each element with the three it becomes under quarter turns', () => {
    // Two orbits of four: 0→1→2→3→0 and 4→6→5→7→4.
    const step = Int32Array.from([1, 2, 3, 0, 6, 7, 5, 4]);
    expect(Array.from(orbitMean(Float32Array.from([1, 2, 3, 6, 10, 20, 30, 40]), step))).toEqual([3, 3, 3, 3, 25, 25, 25, 25]);
  });

  it('batch norms measured again stay tied: pooled over the quarter turns of the images', () => {
    const tied = buildModel('pw-p4-tiny-32', { numClasses: 5, seed: 4 });
    const ties = rotationTies(tied);
    tieWeights(tied, ties, true);
    const untied = buildModel('pw-p4-tiny-32', { numClasses: 5, seed: 4 });
    const onTurns = buildModel('pw-p4-tiny-32', { numClasses: 5, seed: 4 });
    untied.setWeights(tied.getWeights());
    onTurns.setWeights(tied.getWeights());
    const images = orientedTable(24);

    expect(resetBatchNormStatistics(tied, images, { ties })).toBe(3);
    expect(turnDifference(tied)).toBeLessThan(2e-6);
    // Measured plainly, the statistics of these oriented images break the invariance.
    resetBatchNormStatistics(untied, images);
    expect(turnDifference(untied)).toBeGreaterThan(2e-4);
    // The pooled moments are what a plain measurement gives on the images with their turns.
    resetBatchNormStatistics(onTurns, withTurns(images));
    const pooled = batchNormStatistics(tied);
    batchNormStatistics(onTurns).forEach((v, i) => {
      const scale = Math.max(...v.map(Math.abs));
      v.forEach((x, c) => expect(Math.abs(x - pooled[i]![c]!)).toBeLessThan(1e-4 * scale + 1e-6));
    });
  });

  it('training keeps the ties: the trained network is still invariant, and it learned', async () => {
    const { dir, meta, result } = await runTraining(options({ version: 't1', epochs: 4, augment: DEFAULT_AUGMENT }));
    expect(meta.architecture).toBe('pw-p4-tiny-32');
    expect(result.epochs[result.epochs.length - 1]!.trainLoss).toBeLessThan(result.epochs[0]!.trainLoss);
    const model = await tfl.loadLayersModel(folderIO(dir));
    expect(turnDifference(model)).toBeLessThan(2e-5);
    // The daemon runs it folded (batch norms into the convolutions): still invariant.
    expect(turnDifference(foldModel(model)!)).toBeLessThan(2e-5);
    const fresh = buildModel('pw-p4-tiny-32', { numClasses: meta.classes.length, seed: 3 });
    const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(model.getLayer('b2c1_conv').getWeights()[0]!, fresh.getLayer('b2c1_conv').getWeights()[0]!))).dataSync()[0]!);
    expect(moved).toBeGreaterThan(1e-3);
    expect((await readMeta(dir)).training.seed).toBe(3);
  });

  it('plankwatch average of two invariant versions is invariant, its batch norms pooled over the turns', async () => {
    const first = await runTraining(options({ version: 's1', epochs: 2 }));
    const second = await runTraining(options({ version: 's2', epochs: 2, from: first.dir, learningRate: 0.001 }));
    const { dir } = await runAverage({ sources: [first.dir, second.dir], data: FIXTURES, modelsDir: path.join(tmp, 'models'), member: 'p4avg', version: 'avg', backend: 'wasm', command: 'plankwatch average (test)' });
    const model = await tfl.loadLayersModel(folderIO(dir));
    expect(turnDifference(model)).toBeLessThan(2e-5);
  });

  // The trainers on their own: every step keeps the ties, moving statistics included, and so does
  // the weight average's measuring of the batch norms at the end.
  const data = (): TrainData => ({
    train: { table: orientedTable(48), labels: Int32Array.from({ length: 48 }, (_, i) => i % 3) },
    validation: null,
    numClasses: 3,
  });
  const config = (ties: RotationTies): TrainConfig => ({
    epochs: 2, batchSize: 8, learningRate: 0.003, finalLearningRateFraction: 1, weightDecay: 1e-4, seed: 1, classWeights: 'none', augment: DEFAULT_AUGMENT, patience: 0, maxMinutes: 0, fill: 0, ties, averageFrom: 1,
  });

  it('the single-thread trainer keeps the ties at every step and in its weight average', async () => {
    const model = buildModel('pw-p4-tiny-32', { numClasses: 3, seed: 8 });
    const ties = rotationTies(model);
    tieWeights(model, ties, true);
    await train(model, data(), config(ties));
    expect(turnDifference(model)).toBeLessThan(2e-5);
  });

  it('the data-parallel trainer keeps the ties at every step and in its weight average', async () => {
    const model = buildModel('pw-p4-tiny-32', { numClasses: 3, seed: 8 });
    const ties = rotationTies(model);
    tieWeights(model, ties, true);
    await trainParallel(model, data(), { ...config(ties), workers: 2 });
    expect(turnDifference(model)).toBeLessThan(2e-5);
  });
});
