// The transfer recipe: its learning-rate schedule, the schedule fitted to a time budget, and the
// head-first epoch (the convolutions untouched while the head learns, then trained) on the tiny
// network and the fixture images, read as a dark-field colour camera gives them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { folderIO } from '../../src/classify/model-files.js';
import { runTraining, type TrainRunOptions } from '../../src/learn/train-run.js';
import { cosineRate, scheduledRate } from '../../src/learn/trainer.js';
import { TRANSFER_RECIPE } from '../../src/learn/recipe.js';
import { darkFieldColour } from '../helpers/cameras.js';
import { fixtureImages } from '../helpers/images.js';
import { tinyTrainOptions } from '../helpers/training.js';

describe('the learning-rate schedule', () => {
  const base = { learningRate: 0.001, finalLearningRateFraction: 0.02, epochs: 10 };

  it('without head epochs or warm-up is the plain cosine over the run', () => {
    for (const [e, b] of [[0, 0], [3, 5], [9, 9]] as const) expect(scheduledRate(base, e, b, 10)).toBeCloseTo(cosineRate(base, (e + b / 10) / 10), 12);
  });

  it('runs the head epochs at their own rate, warms up linearly, then decays to the final fraction', () => {
    const c = { ...base, headEpochs: 1, headLearningRate: 0.004, warmupEpochs: 0.5 };
    expect(scheduledRate(c, 0, 0, 100)).toBe(0.004);
    expect(scheduledRate(c, 0, 99, 100)).toBe(0.004);
    const first = scheduledRate(c, 1, 0, 100);
    const middle = scheduledRate(c, 1, 24, 100);
    const warm = scheduledRate(c, 1, 49, 100);
    expect(first).toBeLessThan(middle);
    expect(middle).toBeLessThan(warm);
    expect(warm).toBeCloseTo(cosineRate(c, 0.49 / 9), 12);
    expect(scheduledRate(c, 9, 99, 100)).toBeCloseTo(cosineRate(c, (8 + 0.99) / 9), 12);
    expect(cosineRate(c, 1)).toBeCloseTo(0.001 * 0.02, 12);
  });

  it('with a time budget, decays over the time left after the head epochs, however many epochs that is', () => {
    const c = { ...base, epochs: 60, headEpochs: 1, headLearningRate: 0.004, warmupEpochs: 0.5, fitToTime: true, maxMinutes: 10 };
    // The head epoch took 60 s; 600 s in all: the decay spans the 540 s after it.
    expect(scheduledRate(c, 0, 5, 100, { elapsedSeconds: 30, headEndSeconds: null })).toBe(0.004);
    expect(scheduledRate(c, 3, 0, 100, { elapsedSeconds: 330, headEndSeconds: 60 })).toBeCloseTo(cosineRate(c, 0.5), 12);
    expect(scheduledRate(c, 7, 0, 100, { elapsedSeconds: 600, headEndSeconds: 60 })).toBeCloseTo(0.001 * 0.02, 12);
    // The same point in time gives the same rate whether epochs were fast or slow.
    expect(scheduledRate(c, 9, 40, 100, { elapsedSeconds: 330, headEndSeconds: 60 })).toBe(scheduledRate(c, 3, 0, 100, { elapsedSeconds: 330, headEndSeconds: 60 }));
    // Still in the warm-up (by epochs) at its start.
    expect(scheduledRate(c, 1, 0, 100, { elapsedSeconds: 60, headEndSeconds: 60 })).toBeCloseTo(0.001 * (1 / 100 / 0.5), 12);
  });
});

describe('head first, on a dark-field colour camera', () => {
  let tmp = '';
  let data = '';
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-recipe-'));
    process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
    data = path.join(tmp, 'dark');
    for (const img of fixtureImages()) {
      mkdirSync(path.join(data, img.label), { recursive: true });
      writeFileSync(path.join(data, img.label, `${img.name}.png`), await darkFieldColour(img.bytes));
    }
  });
  const options = (over: Partial<TrainRunOptions>): TrainRunOptions => ({ ...tinyTrainOptions(path.join(tmp, 'models'), 'plankwatch train (test)'), ...over });
  const weights = (dir: string, layer: string) => tfl.loadLayersModel(folderIO(dir)).then((m) => Array.from(m.getLayer(layer).getWeights()[0]!.dataSync()));

  it('trains only the head in its first epoch, then every layer; meta.json records the camera and the recipe', async () => {
    const parent = await runTraining(options({ version: 'parent', epochs: 2 }));
    const camera = { polarity: 'dark-field', colour: 'rgb', pixelSizeUm: 10 } as const;
    const recipe = { headEpochs: 1, headLearningRate: TRANSFER_RECIPE.headLearningRate, warmupEpochs: TRANSFER_RECIPE.warmupEpochs, fitToTime: true, maxMinutes: 30 };
    const headOnly = await runTraining(options({ data, member: 'dark', version: 'h', epochs: 1, from: parent.dir, camera, ...recipe }));
    expect(await weights(headOnly.dir, 'b1c1_conv')).toEqual(await weights(parent.dir, 'b1c1_conv'));
    expect(await weights(headOnly.dir, 'logits')).not.toEqual(await weights(parent.dir, 'logits'));
    const both = await runTraining(options({ data, member: 'dark', version: 'b', epochs: 3, from: parent.dir, camera, ...recipe }));
    expect(await weights(both.dir, 'b1c1_conv')).not.toEqual(await weights(parent.dir, 'b1c1_conv'));
    expect(both.meta.camera).toEqual({ polarity: 'dark-field', colour: 'rgb', pixelSizeUm: 10, canonical: 'bright-field' });
    expect(both.meta.training).toMatchObject({ headEpochs: 1, warmupEpochs: 0.3, maxMinutes: 30, schedule: 'cosine over the time budget' });
    expect(both.result.epochs).toHaveLength(3); // the budget holds far more; --epochs caps it
    expect(both.result.epochs[0]!.learningRate).toBe(TRANSFER_RECIPE.headLearningRate);
  });
});
