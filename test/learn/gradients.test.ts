import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/learn/backend.js';

// The wasm convolution gradients (written as forward convolutions) against the cpu backend's own
// Conv2DBackpropFilter / Conv2DBackpropInput kernels, for strides, paddings and kernel sizes.
async function gradients(backend: string, stride: number, pad: 'same' | 'valid', k: number): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend(backend);
  const x = tf.randomNormal([2, 9, 10, 3], 0, 1, 'float32', 1);
  const w = tf.randomNormal([k, k, 3, 5], 0, 1, 'float32', 2);
  const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad)));
  const [gx, gw] = tf.grads(f)([x, w]);
  const out: [Float32Array, Float32Array] = [(await gx!.data()) as Float32Array, (await gw!.data()) as Float32Array];
  tf.dispose([x, w, gx!, gw!]);
  return out;
}

function maxRelError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(a[i]!)));
  return e;
}

describe('wasm convolution gradients', () => {
  it('match the cpu backend', async () => {
    await initBackend('wasm');
    for (const [s, p, k] of [
      [1, 'same', 3],
      [2, 'same', 3],
      [1, 'valid', 3],
      [2, 'valid', 3],
      [1, 'same', 5],
      [2, 'same', 1],
    ] as const) {
      const [cx, cw] = await gradients('cpu', s, p, k);
      const [wx, ww] = await gradients('wasm', s, p, k);
      expect(maxRelError(cx, wx)).toBeLessThan(1e-4);
      expect(maxRelError(cw, ww)).toBeLessThan(1e-4);
    }
  });
});
