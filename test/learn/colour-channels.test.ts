// Members that read R, G and B: a gray parent widened to three channels (its first convolution's
// kernel repeated over them, divided by three) gives the parent's outputs on a gray image repeated
// into the three channels; the network, its ties and meta.json carry the channel count.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberMeta } from '../../src/classify/meta.js';
import { folderIO, writeMeta } from '../../src/classify/model-files.js';
import { initBackend } from '../../src/engine/backend.js';
import { rotationTies } from '../../src/engine/rotation-ties.js';
import { buildModel } from '../../src/learn/architectures.js';
import { DEFAULT_AUGMENT } from '../../src/learn/augment.js';
import { loadImageTable } from '../../src/learn/image-cache.js';
import { runParallelTraining } from '../../src/learn/parallel/run.js';
import { runTraining } from '../../src/learn/train-run.js';
import { transferModel } from '../../src/learn/transfer.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { darkFieldColour } from '../helpers/cameras.js';
import { fixtureImages } from '../helpers/images.js';
import { tinyTrainOptions } from '../helpers/training.js';

const work = mkdtempSync(path.join(tmpdir(), 'pw-colour-'));
process.env.PLANKWATCH_CACHE_DIR = path.join(work, 'cache');
afterAll(() => rmSync(work, { recursive: true, force: true }));
const CLASSES = ['a', 'b', 'c', 'd'];

/** A gray parent of `architecture` with non-trivial batch-norm statistics, saved with its meta.json. */
async function grayParent(architecture: string, size: number): Promise<{ dir: string; model: tfl.LayersModel }> {
  const model = buildModel(architecture, { numClasses: CLASSES.length, seed: 7 });
  for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const [gamma, beta] = layer.getWeights();
    const n = gamma!.shape[0]!;
    layer.setWeights([gamma!, beta!, tf.randomUniform([n], -0.2, 0.2, 'float32', 1), tf.randomUniform([n], 0.5, 1.5, 'float32', 2)]);
  }
  const dir = path.join(work, architecture, 'v1');
  await model.save(folderIO(dir));
  const meta: MemberMeta = {
    name: architecture, version: 'v1', classes: CLASSES, input: { size, channels: 1 }, preprocessing: DEFAULT_PREPROCESS,
    architecture, training: { command: 'test', seed: 7, dataFingerprint: 'test' }, metrics: {}, createdAt: new Date(0).toISOString(),
  };
  await writeMeta(dir, meta);
  return { dir, model };
}

describe('a gray member widened to R, G, B', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  for (const [architecture, size] of [['pw-tiny-32', 32], ['pw-p4-48', 48]] as const) {
    it(`${architecture}: gives the parent's outputs on a gray image repeated into three channels`, async () => {
      const parent = await grayParent(architecture, size);
      const { model, head } = await transferModel(parent.dir, CLASSES, { seed: 1, channels: 3 });
      expect(head).toBeNull();
      expect(model.inputs[0]!.shape).toEqual([null, size, size, 3]);
      const kernel = model.getLayer('b1c1_conv').getWeights()[0]!;
      expect(kernel.shape.slice(0, 3)).toEqual([3, 3, 3]);
      const gray = tf.randomUniform([6, size, size, 1], 0, 1, 'float32', 3);
      const colour = tf.tile(gray, [1, 1, 1, 3]);
      const theirs = (parent.model.predict(gray) as tf.Tensor).dataSync();
      const ours = (model.predict(colour) as tf.Tensor).dataSync();
      let worst = 0;
      theirs.forEach((p, i) => (worst = Math.max(worst, Math.abs(p - ours[i]!))));
      expect(worst).toBeLessThan(1e-5);
      // The same class ranked first for every image.
      const argmax = (p: Float32Array | Int32Array | Uint8Array, n: number) => Array.from({ length: n }, (_, r) => {
        const row = Array.from(p.subarray(r * CLASSES.length, (r + 1) * CLASSES.length));
        return row.indexOf(Math.max(...row));
      });
      expect(argmax(ours, 6)).toEqual(argmax(theirs, 6));
      if (architecture === 'pw-p4-48') expect(rotationTies(model).size).toBeGreaterThan(0);
      tf.dispose([gray, colour]);
      model.dispose();
      parent.model.dispose();
    });
  }
});

describe('train --channels 3 on a colour camera', () => {
  const camera = { polarity: 'dark-field', colour: 'rgb', pixelSizeUm: 0 } as const;
  let data = '';
  beforeAll(async () => {
    await initBackend('wasm');
    data = path.join(work, 'tinted');
    for (const img of fixtureImages()) {
      mkdirSync(path.join(data, img.label), { recursive: true });
      writeFileSync(path.join(data, img.label, `${img.name}.png`), await darkFieldColour(img.bytes));
    }
  });

  it('prepares the three channels, trains from a gray member and records them in meta.json', async () => {
    const base = tinyTrainOptions(path.join(work, 'runs'), 'plankwatch train (test)');
    const items = fixtureImages().slice(0, 3).map((img) => {
      const file = path.join(data, img.label, `${img.name}.png`);
      return { file, rel: `${img.label}/${img.name}.png`, label: img.label, bytes: 1 };
    });
    const gray = await loadImageTable(items, 32, DEFAULT_PREPROCESS, { cache: false, camera });
    const colour = await loadImageTable(items, 32, DEFAULT_PREPROCESS, { cache: false, camera, channels: 3 });
    expect(colour.channels).toBe(3);
    expect(colour.pixels.length).toBe(3 * gray.pixels.length);
    // The tint shows: the organism's channels differ (the cyan light has little red).
    let differ = 0;
    for (let i = 0; i < colour.pixels.length; i += 3) if (colour.pixels[i] !== colour.pixels[i + 2]) differ++;
    expect(differ).toBeGreaterThan(50);

    const parent = await runTraining({ ...base, data, version: 'gray', epochs: 1, camera });
    expect(parent.meta.input.channels).toBe(1);
    const child = await runTraining({ ...base, data, version: 'rgb', epochs: 2, from: parent.dir, camera, channels: 3 });
    expect(child.meta.input).toEqual({ size: 32, channels: 3 });
    expect(child.meta.camera).toMatchObject({ colour: 'rgb' });
    expect(child.result.epochs).toHaveLength(2);
    const saved = await tfl.loadLayersModel(folderIO(child.dir));
    expect(saved.inputs[0]!.shape).toEqual([null, 32, 32, 3]);
    saved.dispose();
    // And from scratch.
    const fresh = await runTraining({ ...base, data, member: 'fresh', version: 'rgb', epochs: 1, camera, channels: 3 });
    expect(fresh.meta.input.channels).toBe(3);
  });

  it('with worker threads computes what this thread computes', async () => {
    const base = { ...tinyTrainOptions(path.join(work, 'parallel'), 'plankwatch train (test)'), data, camera, channels: 3 as const, epochs: 2, augment: DEFAULT_AUGMENT };
    const serial = await runTraining({ ...base, version: 'serial' });
    const one = await runParallelTraining({ ...base, version: 'one', workers: 1 });
    const two = await runParallelTraining({ ...base, version: 'two', workers: 2 });
    expect(one.meta.input.channels).toBe(3);
    serial.result.epochs.forEach((e, i) => expect(one.result.epochs[i]!.trainLoss).toBeCloseTo(e.trainLoss, 4));
    // Two shards see their own batch statistics: near the single thread's, not equal. With
    // batches of 8, each shard normalises over 4 images, and after two epochs the losses (about
    // 2.1) differ by about 0.1 (0.100 with the Winograd convolutions).
    expect(two.meta.input.channels).toBe(3);
    const apart = two.result.epochs.map((e, i) => Math.abs(e.trainLoss - serial.result.epochs[i]!.trainLoss));
    apart.forEach((d) => expect(d).toBeLessThan(0.15));
    expect(Math.max(...apart)).toBeGreaterThan(1e-4);
  });

  it('refuses three channels on a gray camera, and a colour member made gray', async () => {
    const base = tinyTrainOptions(path.join(work, 'refused'), 'plankwatch train (test)');
    await expect(runTraining({ ...base, version: 'x', epochs: 1, channels: 3 })).rejects.toThrow(/--channels 3 reads R, G and B: declare the colour camera with --colour rgb/);
    const colour = await runTraining({ ...base, data, version: 'c', epochs: 1, camera, channels: 3 });
    await expect(runTraining({ ...base, data, version: 'g', epochs: 1, camera, from: colour.dir, channels: 1 })).rejects.toThrow(/cannot be made gray again/);
  });
});
