import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { folderIO, readMeta, verifyChecksums } from '../../src/classify/model-files.js';
import { incompatibility, runAverage, type AverageRunOptions } from '../../src/learn/average-run.js';
import { runTraining, type TrainRunOptions } from '../../src/learn/train-run.js';
import { FIXTURES, tinyTrainOptions } from '../helpers/training.js';

let tmp = '';
let models = '';
let a = '';
let b = '';

function trainOptions(over: Partial<TrainRunOptions>): TrainRunOptions {
  return { ...tinyTrainOptions(models, 'plankwatch train (test)'), epochs: 2, ...over };
}

function averageOptions(over: Partial<AverageRunOptions>): AverageRunOptions {
  return { sources: [a, b], data: FIXTURES, modelsDir: models, member: 'tiny', version: 'avg', backend: 'wasm', command: 'plankwatch average (test)', ...over };
}

/** Every weight of a saved model, flattened, by layer and weight. */
async function weightsOf(dir: string): Promise<Map<string, number[]>> {
  const model = await tfl.loadLayersModel(folderIO(dir));
  const out = new Map<string, number[]>();
  for (const layer of model.layers) layer.getWeights().forEach((w, i) => out.set(`${layer.name}/${i}`, Array.from(w.dataSync())));
  model.dispose();
  return out;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-soup-'));
  models = path.join(tmp, 'models');
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  a = (await runTraining(trainOptions({ version: 'a' }))).dir;
  b = (await runTraining(trainOptions({ version: 'b', from: a, learningRate: 0.001 }))).dir;
});

describe('plankwatch average', () => {
  it('writes the mean of the versions\' weights, with batch norms measured again and held-out metrics', async () => {
    const { dir, meta, sources, validation } = await runAverage(averageOptions({}));
    expect(dir).toBe(path.join(models, 'tiny', 'avg'));
    const [wa, wb, avg] = await Promise.all([weightsOf(a), weightsOf(b), weightsOf(dir)]);
    let compared = 0;
    for (const [key, values] of avg) {
      const isMovingStat = /_bn\/[23]$/.test(key);
      if (isMovingStat) {
        // Measured again, not averaged.
        const gap = Math.max(...values.map((v, i) => Math.abs(v - (wa.get(key)![i]! + wb.get(key)![i]!) / 2)));
        expect(gap).toBeGreaterThan(1e-3);
        continue;
      }
      values.forEach((v, i) => expect(v).toBeCloseTo((wa.get(key)![i]! + wb.get(key)![i]!) / 2, 5));
      compared++;
    }
    expect(compared).toBeGreaterThan(4);

    expect(sources.map((s) => s.id)).toEqual(['tiny/a', 'tiny/b']);
    expect(meta.metrics.logLoss).toBe(validation.logLoss);
    expect(meta.metrics.evaluatedOn).toBe(24);
    expect(meta.training.averageOf).toEqual(sources.map((s) => expect.objectContaining({ version: s.id, weight: 0.5 })));
    expect(path.resolve(dir, meta.training.split!)).toBe(path.resolve(a, (await readMeta(a)).training.split!));
    expect(await verifyChecksums(dir, await readMeta(dir))).toEqual([]);
  });

  it('weights the versions as asked', async () => {
    const { dir } = await runAverage(averageOptions({ version: 'only-b', weights: [0, 3] }));
    const [wb, got] = await Promise.all([weightsOf(b), weightsOf(dir)]);
    for (const [key, values] of got) if (!/_bn\/[23]$/.test(key)) expect(values).toEqual(wb.get(key));
  });

  it('refuses versions that are not one network on one split, and an existing version', async () => {
    const other = (await runTraining(trainOptions({ version: 'other-split', validationFraction: 0.5, split: path.join(models, 'splits', 'half') }))).dir;
    await expect(runAverage(averageOptions({ sources: [a, other], version: 'x' }))).rejects.toThrow(/different splits/);
    await expect(runAverage(averageOptions({ sources: [a], version: 'x' }))).rejects.toThrow(/at least two/);
    await expect(runAverage(averageOptions({ weights: [1], version: 'x' }))).rejects.toThrow(/--weights/);
    await expect(runAverage(averageOptions({ version: 'a' }))).rejects.toThrow(/already holds a model/);
    const meta = await readMeta(a);
    expect(incompatibility([meta, { ...meta, architecture: 'pw-vgg-48' }], [['1'], ['1']])).toMatch(/only versions of one network/);
    expect(incompatibility([meta, { ...meta, classes: [...meta.classes].reverse() }], [['1'], ['1']])).toMatch(/different class lists/);
    expect(incompatibility([meta, meta], [['3x3'], ['5x5']])).toMatch(/different weight shapes/);
  });
});
