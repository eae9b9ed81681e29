// model.onnx written by the exporter gives the probabilities of the TensorFlow.js model it came
// from, to 1e-4, on real images, through the real ONNX Runtime (onnxruntime-node's CPU provider).
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { folderIO, readMeta } from '../../src/classify/model-files.js';
import { exportOnnx, ONNX_INPUT, ONNX_OUTPUT } from '../../src/classify/onnx-export.js';
import { buildModel } from '../../src/learn/architectures.js';
import { initBackend } from '../../src/engine/backend.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { fixturePixels, maxAbsDiff } from './helpers.js';

async function onnxProbs(bytes: Uint8Array, pixels: Float32Array, count: number, size: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const out = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', pixels, [count, size, size, 1]) });
    return out[ONNX_OUTPUT]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function tfjsProbs(model: tfl.LayersModel, pixels: Float32Array, count: number, size: number): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor4d(pixels, [count, size, size, 1])) as tf.Tensor).dataSync() as Float32Array);
}

const shipped = (JSON.parse(readFileSync('models/ensemble.json', 'utf8')) as EnsembleFile).members.map((m) => `${m.name}/${m.version}`);

describe('ONNX export', () => {
  beforeAll(async () => {
    // The reference: the layers model's own predict (no folding) on the wasm backend.
    await initBackend('wasm');
  });

  it.each(shipped)('shipped member %s: ONNX Runtime and TensorFlow.js agree to 1e-4 on every fixture image', async (id) => {
    const dir = `models/${id}`;
    const meta = await readMeta(dir);
    const size = meta.input.size;
    const model = await tfl.loadLayersModel(folderIO(dir));
    const { count, pixels } = await fixturePixels(size, meta.preprocessing);
    const expected = tfjsProbs(model, pixels, count, size);
    const actual = await onnxProbs(exportOnnx(model, { id }), pixels, count, size);
    model.dispose();
    expect(actual.length).toBe(count * meta.classes.length);
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-4);
    // Same top class for every image.
    const k = meta.classes.length;
    const argmax = (p: Float32Array, i: number) => p.subarray(i * k, (i + 1) * k).reduce((best, v, j, row) => (v > row[best]! ? j : best), 0);
    for (let i = 0; i < count; i++) expect(argmax(actual, i)).toBe(argmax(expected, i));
  });

  it.each(shipped)('shipped member %s carries model.onnx: exactly the export of its model.json, covered by its checksums', async (id) => {
    const dir = `models/${id}`;
    const meta = await readMeta(dir);
    expect(meta.checksums?.['model.onnx']).toMatch(/^[0-9a-f]{64}$/);
    const model = await tfl.loadLayersModel(folderIO(dir));
    const fresh = exportOnnx(model, { id });
    model.dispose();
    expect(Buffer.from(fresh).equals(readFileSync(`${dir}/model.onnx`))).toBe(true);
  });

  it('has a free batch size: one image gives the same row as in a batch', async () => {
    const model = buildModel('pw-tiny-32', { numClasses: 5, seed: 3 });
    const bytes = exportOnnx(model);
    const { count, pixels } = await fixturePixels(32, DEFAULT_PREPROCESS);
    const all = await onnxProbs(bytes, pixels, count, 32);
    const one = await onnxProbs(bytes, pixels.slice(7 * 32 * 32, 8 * 32 * 32), 1, 32);
    expect(maxAbsDiff(one, all.subarray(7 * 5, 8 * 5))).toBeLessThan(1e-6);
    model.dispose();
  });

  it('exports strides, valid padding, odd sizes, plain ReLU and a network that ends in logits (a Softmax is added)', async () => {
    // 37 px: odd sizes make 'same' padding uneven, as TensorFlow pads (the extra pixel after).
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [37, 37, 1], filters: 6, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', kernelInitializer: tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 1 }) }),
        tfl.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 2 }), biasInitializer: tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 3 }) }),
        tfl.layers.batchNormalization({ betaInitializer: tfl.initializers.constant({ value: 0.2 }), movingVarianceInitializer: tfl.initializers.constant({ value: 2 }) }),
        tfl.layers.reLU(),
        tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 7, kernelInitializer: tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 4 }) }),
      ],
    });
    const { count, pixels } = await fixturePixels(37, DEFAULT_PREPROCESS);
    const expected = tf.tidy(() => (tf.softmax(model.predict(tf.tensor4d(pixels, [count, 37, 37, 1])) as tf.Tensor) as tf.Tensor).dataSync() as Float32Array);
    const actual = await onnxProbs(exportOnnx(model), pixels, count, 37);
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-5);
    model.dispose();
  });

  it('refuses a network it cannot fold with PW_E_ONNX_EXPORT', () => {
    const input = tfl.input({ shape: [16, 16, 1] });
    const a = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input) as tfl.SymbolicTensor;
    const sum = tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 3, activation: 'softmax' }).apply(tfl.layers.flatten().apply(sum)) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    expect(() => exportOnnx(model)).toThrow(/PW_E_ONNX_EXPORT/);
    model.dispose();
  });
});
