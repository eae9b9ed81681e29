import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { folderIO, readMeta } from '../../src/classify/model-files.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { NO_AUGMENT } from '../../src/learn/augment.js';
import { buildModel } from '../../src/learn/architectures.js';
import { initBackend } from '../../src/engine/backend.js';
import { loadSplit, readDataset, stratifiedSplit, type Dataset, type Split } from '../../src/learn/dataset.js';
import { loadImageTable, subTable } from '../../src/learn/image-cache.js';
import { targetRows } from '../../src/learn/targets.js';
import { teacherTargets } from '../../src/learn/teacher.js';
import { runTraining, type TrainRunOptions } from '../../src/learn/train-run.js';
import { predictTable, train, type TrainConfig, type TrainData } from '../../src/learn/trainer.js';
import { transformBatch } from '../../src/learn/tta.js';
import { FIXTURES, tinyTrainOptions } from '../helpers/training.js';

let tmp = '';
let models = '';
let teacherDir = '';
let teacherFile = '';
let dataset: Dataset;
let split: Split;

function trainOptions(over: Partial<TrainRunOptions>): TrainRunOptions {
  return { ...tinyTrainOptions(models, 'plankwatch train (test)'), epochs: 2, ...over };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-teacher-'));
  models = path.join(tmp, 'models');
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  await initBackend('wasm');
  teacherDir = (await runTraining(trainOptions({ version: 'teacher' }))).dir;
  teacherFile = path.join(models, 'teacher.json');
  await writeFile(teacherFile, JSON.stringify({ version: 't1', voting: 'soft', tta: ['identity', 'rot90'], members: [{ name: 'tiny', version: 'teacher' }] }));
  dataset = await readDataset(FIXTURES);
  split = await loadSplit(path.join(teacherDir, (await readMeta(teacherDir)).training.split!));
});

describe('distillation targets', () => {
  it('mixes the label and the teacher\'s row by the teacher\'s share', () => {
    const teacher = Float32Array.from([0.2, 0.3, 0.5, 0.6, 0.4, 0]);
    const labels = Int32Array.from([2, 0]);
    const out = targetRows(new Float32Array(6), 3, [1, 0], labels, teacher, 0.25);
    const expected = [0.25 * 0.6 + 0.75, 0.25 * 0.4, 0, 0.25 * 0.2, 0.25 * 0.3, 0.25 * 0.5 + 0.75];
    Array.from(out).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6));
    expect(Array.from(targetRows(new Float32Array(6), 3, [0, 1], labels, undefined, 0.25))).toEqual([0, 0, 1, 1, 0, 0]);
  });

  it('is the teacher\'s soft vote over its views, on the training images, and is read back only for the same teacher', async () => {
    const cacheDir = path.join(tmp, 'cache', 'targets');
    const { targets, record } = await teacherTargets(teacherFile, dataset, split.train, split.validation, { cacheDir });
    expect(record).toEqual({ ensemble: teacherFile, version: 't1', members: ['tiny/teacher'] });
    const k = dataset.classes.length;
    expect(targets.length).toBe(split.train.length * k);

    // The same vote computed here: the model's probabilities on the image and its quarter turn, averaged.
    const model = await tfl.loadLayersModel(folderIO(teacherDir));
    const table = subTable(dataset, await loadImageTable(dataset.items, 32, DEFAULT_PREPROCESS), split.train).table;
    const a = predictTable(model, table, 64, (x) => transformBatch(x, 'identity'));
    const b = predictTable(model, table, 64, (x) => transformBatch(x, 'rot90'));
    expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-3);
    Array.from(targets).forEach((v, i) => expect(v).toBeCloseTo((a[i]! + b[i]!) / 2, 4));
    model.dispose();

    const lines: string[] = [];
    const again = await teacherTargets(teacherFile, dataset, split.train, split.validation, { cacheDir, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/read back/);
    expect(Array.from(again.targets)).toEqual(Array.from(targets));

    // Another teacher (here: the same model, one view) in the same folder computes its own targets.
    const oneView = path.join(models, 'teacher-one-view.json');
    await writeFile(oneView, JSON.stringify({ version: 't2', voting: 'soft', members: [{ name: 'tiny', version: 'teacher' }] }));
    const other: string[] = [];
    const plain = await teacherTargets(oneView, dataset, split.train, split.validation, { cacheDir, log: (l) => other.push(l) });
    expect(other.join('\n')).not.toMatch(/read back/);
    Array.from(plain.targets).forEach((v, i) => expect(v).toBeCloseTo(a[i]!, 5));
  });

  it('stops when asked before training begins, writing no targets', async () => {
    const cacheDir = path.join(tmp, 'cache', 'stopped');
    await expect(teacherTargets(teacherFile, dataset, split.train, split.validation, { cacheDir, stopRequested: () => true })).rejects.toThrow(/stopped while the teacher's targets were computed/);
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('refuses a teacher that trained on the held-out images', async () => {
    const other = split.validation.slice(0, 2);
    await expect(teacherTargets(teacherFile, dataset, split.validation, [...split.train.slice(0, 3), ...other])).rejects.toThrow(/was trained on 3 of this run's 5 held-out images/);
  });
});

describe('training with a teacher', () => {
  async function tinyRun(targets: 'none' | 'one-hot' | 'uniform'): Promise<number[]> {
    const table = await loadImageTable(dataset.items, 32, DEFAULT_PREPROCESS);
    const fixed = stratifiedSplit(dataset, 0.25, 3);
    const trainPart: TrainData['train'] = subTable(dataset, table, fixed.train);
    const k = dataset.classes.length;
    if (targets !== 'none') {
      trainPart.targets = new Float32Array(trainPart.labels.length * k).fill(targets === 'uniform' ? 1 / k : 0);
      if (targets === 'one-hot') trainPart.labels.forEach((l, i) => (trainPart.targets![i * k + l] = 1));
    }
    const model = buildModel('pw-tiny-32', { numClasses: k, seed: 5 });
    const config: TrainConfig = {
      epochs: 2, batchSize: 8, learningRate: 0.003, finalLearningRateFraction: 0.02, weightDecay: 0, seed: 5,
      classWeights: 'none', augment: NO_AUGMENT, patience: 0, maxMinutes: 0, fill: 0, distill: targets === 'none' ? 0 : targets === 'one-hot' ? 1 : 0.5,
    };
    const result = await train(model, { train: trainPart, validation: null, numClasses: k }, config);
    model.dispose();
    return result.epochs.map((e) => e.trainLoss);
  }

  it('learns from the targets: one-hot targets train exactly as the labels do, softer ones differently', async () => {
    const plain = await tinyRun('none');
    expect(await tinyRun('one-hot')).toEqual(plain);
    const soft = await tinyRun('uniform');
    expect(Math.abs(soft[0]! - plain[0]!)).toBeGreaterThan(1e-3);
  });

  it('records the teacher in meta.json, and refuses a share outside (0, 1]', async () => {
    const { meta } = await runTraining(trainOptions({ version: 'student', teacher: teacherFile, distill: 0.6 }));
    expect(meta.training.teacher).toEqual({ ensemble: teacherFile, version: 't1', members: ['tiny/teacher'], distill: 0.6 });
    await expect(runTraining(trainOptions({ version: 'bad', teacher: teacherFile, distill: 1.5 }))).rejects.toThrow(/--distill must be above 0 and at most 1/);
  });
});
