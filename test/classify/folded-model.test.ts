import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { foldModel, inferenceModel } from '../../src/classify/folded-model.js';
import { folderIO } from '../../src/classify/model-files.js';
import { buildModel } from '../../src/learn/architectures.js';
import { initBackend } from '../../src/engine/backend.js';
import { decodeGray } from '../../src/preprocess/decode.js';
import { DEFAULT_PREPROCESS, prepare } from '../../src/preprocess/prepare.js';

const FIXTURES = 'test/fixtures/ndsb';

/** Two real images of every fixture class, prepared at `size`. */
async function fixtureBatch(size: number): Promise<tf.Tensor4D> {
  const files: string[] = [];
  for (const cls of readdirSync(FIXTURES)) {
    const dir = path.join(FIXTURES, cls);
    if (statSync(dir).isDirectory()) files.push(...readdirSync(dir).slice(0, 2).map((f) => path.join(dir, f)));
  }
  const pixels = new Float32Array(files.length * size * size);
  for (const [i, file] of files.entries()) {
    const gray = await decodeGray(readFileSync(file), { maxPixels: 1e8 });
    pixels.set(prepare(gray, size, DEFAULT_PREPROCESS).pixels, i * size * size);
  }
  return tf.tensor4d(pixels, [files.length, size, size, 1]);
}

/** Give every batch-norm layer moving statistics and scales far from the identity. */
function scrambleBatchNorm(model: tfl.LayersModel): void {
  let seed = 11;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const [gamma, beta, mean, variance] = layer.getWeights();
    layer.setWeights([
      tf.randomUniform(gamma!.shape, 0.5, 2, 'float32', seed++),
      tf.randomUniform(beta!.shape, -0.5, 0.5, 'float32', seed++),
      tf.randomUniform(mean!.shape, -0.3, 0.3, 'float32', seed++),
      tf.randomUniform(variance!.shape, 0.2, 3, 'float32', seed++),
    ]);
  }
}

describe('folded inference model', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('gives the shipped member the same probabilities as predict on real images', async () => {
    const model = await tfl.loadLayersModel(folderIO('models/p4-fit48/v1'));
    expect(foldModel(model)).not.toBeNull();
    // The form inference runs: folded, with the layers model it came from already disposed.
    const folded = inferenceModel(await tfl.loadLayersModel(folderIO('models/p4-fit48/v1')));
    const x = await fixtureBatch(48);
    const expected = (model.predict(x) as tf.Tensor).arraySync() as number[][];
    const actual = folded.predict(x).arraySync();
    expect(actual.length).toBe(expected.length);
    for (let i = 0; i < expected.length; i++) {
      const e = expected[i]!;
      const a = actual[i]!;
      expect(a.indexOf(Math.max(...a))).toBe(e.indexOf(Math.max(...e)));
      for (let c = 0; c < e.length; c++) expect(Math.abs(a[c]! - e[c]!)).toBeLessThan(1e-4);
    }
    folded.dispose();
    model.dispose();
    x.dispose();
  });

  it('folds batch-norm statistics far from the identity exactly', async () => {
    const model = buildModel('pw-tiny-32', { numClasses: 8, seed: 3 });
    scrambleBatchNorm(model);
    const folded = foldModel(model)!;
    const x = await fixtureBatch(32);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, folded.predict(x)))).dataSync()[0]!);
    // A fold that ignored the statistics (or applied them twice) differs by far more than this.
    const unfolded = buildModel('pw-tiny-32', { numClasses: 8, seed: 3 });
    const ignored = tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, unfolded.predict(x) as tf.Tensor))).dataSync()[0]!);
    expect(diff).toBeLessThan(1e-5);
    expect(ignored).toBeGreaterThan(1e-2);
    folded.dispose();
    model.dispose();
    unfolded.dispose();
    x.dispose();
  });

  it('frees every tensor it made', () => {
    const model = buildModel('pw-tiny-32', { numClasses: 8, seed: 3 });
    const before = tf.memory().numTensors;
    const folded = foldModel(model)!;
    const out = folded.predict(tf.zeros([2, 32, 32, 1]));
    out.dispose();
    folded.dispose();
    expect(tf.memory().numTensors).toBe(before + 1); // the zeros input, owned by the caller
    model.dispose();
  });

  it('declines a model it cannot fold, so that predict runs it unchanged', () => {
    const input = tfl.input({ shape: [8, 8, 1] });
    const a = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input) as tfl.SymbolicTensor;
    const sum = tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
    const branched = tfl.model({ inputs: input, outputs: tfl.layers.flatten().apply(sum) as tfl.SymbolicTensor });
    expect(foldModel(branched)).toBeNull();

    const tanh = tfl.sequential({ layers: [tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, activation: 'tanh' }), tfl.layers.flatten()] });
    const before = tf.memory().numTensors;
    expect(foldModel(tanh)).toBeNull();
    expect(tf.memory().numTensors).toBe(before);
    // inferenceModel then runs the layers model itself.
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const runs = inferenceModel(tanh);
    expect(runs.predict(x).arraySync()).toEqual((tanh.predict(x) as tf.Tensor).arraySync());
    runs.dispose();
    expect(() => tanh.predict(x)).toThrow(/disposed/);
    x.dispose();
  });
});
