import { spawn } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { folderIO, readMeta, verifyChecksums } from '../../src/classify/model-files.js';
import { loadSplit, overlap } from '../../src/learn/dataset.js';
import { FIXTURES, tinyTrainOptions } from '../helpers/training.js';
import { runTraining, type TrainRunOptions } from '../../src/learn/train-run.js';
import { calibrateIdentityNorms, startAsIdentity } from '../../src/learn/identity-start.js';
import { architectureInfo, setDropoutRate } from '../../src/learn/architectures.js';
import { initBackend } from '../../src/engine/backend.js';
import { predictTable } from '../../src/learn/trainer.js';

let tmp = '';

function options(over: Partial<TrainRunOptions>): TrainRunOptions {
  return { ...tinyTrainOptions(path.join(tmp, 'models'), 'plankwatch train (test)'), ...over };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-train-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
});

describe('training on the fixture images', () => {
  it('lowers the loss, saves a version folder with meta.json, and reloads to identical predictions', async () => {
    const { dir, meta, result } = await runTraining(options({ version: 'a' }));
    expect(result.epochs.length).toBe(6);
    expect(result.epochs[5]!.trainLoss).toBeLessThan(result.epochs[0]!.trainLoss);
    expect(meta.training.seed).toBe(3);
    expect(meta.training.command).toContain('plankwatch train');
    expect(meta.classes.length).toBe(8);
    expect(meta.input.size).toBe(32);
    expect(meta.metrics.evaluatedOn).toBe(24);
    expect(await verifyChecksums(dir, await readMeta(dir))).toEqual([]);

    // The split is saved beside the models and train/validation never share an image.
    const split = await loadSplit(path.join(dir, meta.training.split!));
    expect(overlap(split.train, split.validation)).toEqual([]);
    expect(split.dataFingerprint).toBe(meta.training.dataFingerprint);

    const a = await tfl.loadLayersModel(folderIO(dir));
    const b = await tfl.loadLayersModel(folderIO(dir));
    const x = tf.randomUniform([4, 32, 32, 1], 0, 1, 'float32', 5);
    const pa = (a.predict(x) as tf.Tensor).dataSync();
    const pb = (b.predict(x) as tf.Tensor).dataSync();
    expect(Array.from(pa)).toEqual(Array.from(pb));
    tf.dispose([x]);
    a.dispose();
    b.dispose();
  });

  it('is deterministic for a seed', async () => {
    const one = await runTraining(options({ version: 'b', epochs: 2 }));
    const two = await runTraining(options({ version: 'c', epochs: 2 }));
    expect(two.result.epochs.map((e) => e.trainLoss)).toEqual(one.result.epochs.map((e) => e.trainLoss));
  });

  it('resumes from its checkpoint and finishes the remaining epochs', async () => {
    const first = await runTraining(options({ version: 'r', epochs: 2 }));
    expect(first.result.epochs.length).toBe(2);
    const resumed = await runTraining(options({ version: 'r', epochs: 4, resume: true, hooks: { resume: true } }));
    expect(resumed.result.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4]);
    expect(resumed.result.epochs[1]!.trainLoss).toBe(first.result.epochs[1]!.trainLoss);
    expect(resumed.result.epochs[3]!.trainLoss).toBeLessThan(resumed.result.epochs[0]!.trainLoss);
  });

  it('resumed with a decay over the time budget, goes on down the schedule instead of starting it again', async () => {
    // --schedule time --max-minutes 0.5: the learning rate follows the clock down from 0.003.
    const timed = { fitToTime: true, maxMinutes: 0.5, learningRate: 0.003 };
    const first = await runTraining(options({ ...timed, version: 't', epochs: 2 }));
    const resumed = await runTraining(options({ ...timed, version: 't', epochs: 3, resume: true, hooks: { resume: true } }));
    const rates = resumed.result.epochs.map((e) => e.learningRate);
    expect(rates.slice(0, 2)).toEqual(first.result.epochs.map((e) => e.learningRate));
    expect(rates[1]!).toBeLessThan(rates[0]!);
    // Starting again from the resume would have put the third epoch's rate above the second's.
    expect(rates[2]!).toBeLessThan(rates[1]!);
  });

  it('transfer learning: new classifier for other classes, frozen base stays unchanged', async () => {
    const { writeFile } = await import('node:fs/promises');
    const { readDataset } = await import('../../src/learn/dataset.js');
    const parent = await runTraining(options({ version: 'p', epochs: 2 }));
    const ds = await readDataset(FIXTURES);
    const four = ds.classes.slice(0, 4);
    const csv = path.join(tmp, 'four.csv');
    await writeFile(csv, ['path,label', ...ds.items.filter((i) => four.includes(i.label)).map((i) => `${path.resolve(i.file)},${i.label}`)].join('\n'));
    const child = await runTraining(options({ data: csv, member: 'child', version: 'c1', epochs: 2, from: parent.dir, freeze: true, unfreezeTop: 0 }));
    expect(child.meta.classes).toEqual(four);
    expect(child.meta.parent).toBe('tiny/p');
    const before = await tfl.loadLayersModel(folderIO(parent.dir));
    const after = await tfl.loadLayersModel(folderIO(child.dir));
    const kernel = (m: tfl.LayersModel) => Array.from(m.getLayer('b1c1_conv').getWeights()[0]!.dataSync());
    expect(kernel(after)).toEqual(kernel(before));
    expect((after.outputs[0]!.shape as number[])[1]).toBe(4);
  });
  it('builds with the dropout asked for, and fine-tunes a parent with another rate', async () => {
    const rates = (m: tfl.LayersModel) => m.layers.filter((l) => l.getClassName() === 'Dropout').map((l) => (l as unknown as { rate: number }).rate);
    const parent = await runTraining(options({ version: 'd1', epochs: 1, dropout: 0.25 }));
    expect(rates(await tfl.loadLayersModel(folderIO(parent.dir)))).toEqual([0.25, 0.25]);
    expect(parent.meta.training.dropout).toBe(0.25);
    const child = await runTraining(options({ version: 'd2', epochs: 1, from: parent.dir, dropout: 0.05 }));
    expect(rates(await tfl.loadLayersModel(folderIO(child.dir)))).toEqual([0.05, 0.05]);
    expect(child.meta.training.dropout).toBe(0.05);
    expect(() => setDropoutRate(tfl.sequential({ layers: [tfl.layers.dense({ units: 1, inputShape: [1] })] }), 1)).toThrow(/below 1/);
  });
  it('starts a new network from the layers of another model that have the same names and shapes', async () => {
    const parent = await runTraining(options({ version: 'i1', epochs: 2 }));
    const child = await runTraining(options({ member: 'grown', version: 'i2', epochs: 1, learningRate: 1e-9, initFrom: parent.dir }));
    expect(child.meta.training.initialisedFrom).toBe('tiny/i1');
    const kernel = async (dir: string) => Array.from((await tfl.loadLayersModel(folderIO(dir))).getLayer('b2c1_conv').getWeights()[0]!.dataSync());
    const before = await kernel(parent.dir);
    const after = await kernel(child.dir);
    after.forEach((w, i) => expect(w).toBeCloseTo(before[i]!, 5));
    const fresh = await runTraining(options({ member: 'fresh', version: 'i3', epochs: 1, learningRate: 1e-9 }));
    expect((await kernel(fresh.dir))[0]).not.toBeCloseTo(before[0]!, 5);
    await expect(runTraining(options({ member: 'vgg', version: 'i4', epochs: 1, architecture: 'pw-vgg-48', initFrom: parent.dir }))).rejects.toThrow(/no layer of that model/);
    await expect(runTraining(options({ member: 'both', version: 'i5', epochs: 1, from: parent.dir, initFrom: parent.dir }))).rejects.toThrow(/exclude each other/);
  });
  it('sizes organisms to fill the input with --scale fit (started from a model that keeps their size), and refuses it with --from', async () => {
    const parent = await runTraining(options({ version: 's1', epochs: 1 }));
    expect(parent.meta.preprocessing.noUpscale).toBe(true);
    const fit = await runTraining(options({ member: 'fit', version: 's2', epochs: 1, initFrom: parent.dir, preprocess: { ...parent.meta.preprocessing, noUpscale: false } }));
    expect(fit.meta.preprocessing).toEqual({ ...parent.meta.preprocessing, noUpscale: false });
    await expect(runTraining(options({ member: 'fit', version: 's3', epochs: 1, from: parent.dir, preprocess: { ...parent.meta.preprocessing, noUpscale: false } }))).rejects.toThrow(/--scale and --from exclude each other/);
  });

  it('starts a new square convolution as the identity, and leaves any other new layer as built', async () => {
    await initBackend();
    const square = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, inputShape: [6, 6, 4] });
    const wider = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false });
    tfl.sequential({ layers: [square, wider] });
    const widerBefore = Array.from(wider.getWeights()[0]!.dataSync());
    expect(startAsIdentity(square)).toBe(true);
    expect(startAsIdentity(wider)).toBe(false);
    expect(Array.from(wider.getWeights()[0]!.dataSync())).toEqual(widerBefore);
    const x = tf.randomNormal([2, 6, 6, 4], 0, 1, 'float32', 3);
    const y = square.apply(x) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual(Array.from(x.dataSync()));
    expect(architectureInfo('pw-deep-80').blocks.flat().length).toBe(10);
  });
  it('sets the batch norm after an identity convolution so the grown network passes the features through', async () => {
    await initBackend();
    const input = tfl.input({ shape: [8, 8, 1] });
    const trained = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tfl.initializers.randomNormal({ mean: 0.3, stddev: 1, seed: 5 }), name: 'b1c1_conv' });
    const features = tfl.layers.leakyReLU({ alpha: 0.1 }).apply(trained.apply(input)) as tfl.SymbolicTensor;
    const added = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'b1c2_conv' });
    const out = tfl.layers.batchNormalization({ name: 'b1c2_bn' }).apply(added.apply(features)) as tfl.SymbolicTensor;
    const grown = tfl.model({ inputs: input, outputs: out });
    const pixels = Uint8Array.from({ length: 40 * 64 }, (_, i) => (i * 7919) % 256);
    const table = { size: 8, pixels, rels: Array.from({ length: 40 }, (_, i) => `img${i}`) };
    startAsIdentity(added);
    // Training computes batch norm with the batch's own statistics: that is where a plain new
    // batch norm would rescale every feature.
    const x = tf.tensor4d(Float32Array.from(pixels, (v) => v / 255), [40, 8, 8, 1]);
    const inTraining = () => Array.from((grown.apply(x, { training: true }) as tf.Tensor).dataSync());
    const want = Array.from((tfl.model({ inputs: input, outputs: features }).predict(x) as tf.Tensor).dataSync());
    const gap = (got: number[]) => Math.max(...got.map((v, i) => Math.abs(v - want[i]!)));
    expect(gap(inTraining())).toBeGreaterThan(0.1);
    expect(calibrateIdentityNorms(grown, ['b1c2_conv'], table)).toEqual(['b1c2_bn']);
    expect(gap(inTraining())).toBeLessThan(0.01);
    expect(gap(Array.from(predictTable(grown, table)))).toBeLessThan(0.01);
  });
});

describe('stopping a training run from the command line', () => {
  it('SIGINT ends the run after the current batch and writes the best epoch so far', async () => {
    const modelsDir = path.join(tmp, 'models-sigint');
    const child = spawn(
      process.execPath,
      ['dist/cli.js', 'train', '--data', FIXTURES, '--models', modelsDir, '--member', 'stopped', '--arch', 'pw-tiny-32', '--epochs', '500', '--batch-size', '8', '--seed', '3', '--val-fraction', '0.25', '--backend', 'wasm'],
      { env: { ...process.env, PLANKWATCH_CACHE_DIR: path.join(tmp, 'cache-sigint') }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // Interrupt once the second epoch has begun: the first is validated and checkpointed.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (/epoch 2\//.test(stderr)) {
          clearInterval(timer);
          child.kill('SIGINT');
          resolve();
        }
        if (child.exitCode !== null) {
          clearInterval(timer);
          reject(new Error(`train exited early (${child.exitCode}):\n${stderr}`));
        }
      }, 20);
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('SIGINT: stopping after this batch');
    const versions = await readdir(path.join(modelsDir, 'stopped'));
    expect(versions).toHaveLength(1);
    const meta = await readMeta(path.join(modelsDir, 'stopped', versions[0]!));
    expect(meta.training.stopReason).toBe('stopped on request');
    expect(meta.training.epochs).toBeGreaterThanOrEqual(2);
    expect(meta.training.epochs).toBeLessThan(500);
    expect(meta.metrics.logLoss).toBeGreaterThan(0);
  }, 60_000);
});
