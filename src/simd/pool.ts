// The 2x2, stride-2 max pool of plankwatch's networks as one SIMD pass over the backend's memory
// (kernels.wat "max_pool_2x2"): 1.1-1.8 times the speed of the wasm backend's own MaxPool on
// these shapes (most on the first, largest pool). Training's forward pass reaches it through the
// wasm MaxPool kernel (../engine/wasm-gradients.ts), the daemon's folded inference directly.
import type * as tf from '@tensorflow/tfjs-core';
import { heapKernelsApply, prepare, simd } from './heap.js';

type Pair = number | [number, number];

/** Whether a pool is the networks' own: 2x2 windows, stride 2, no padding, on an NHWC input of even height and width. */
export function isPool2x2(x: { shape: number[] }, poolSize: Pair, strides: Pair, pad: unknown, dimRoundingMode?: unknown): boolean {
  const two = (v: Pair) => (Array.isArray(v) ? v[0] === 2 && v[1] === 2 : v === 2);
  return x.shape.length === 4 && two(poolSize) && two(strides) && pad === 'valid' && dimRoundingMode == null && x.shape[1]! % 2 === 0 && x.shape[2]! % 2 === 0;
}

/** Whether the SIMD pass takes this pool: isPool2x2, float32, channels a multiple of 4, on the wasm backend. */
export function directPool2x2(x: { shape: number[]; dtype: string }, poolSize: Pair, strides: Pair, pad: unknown, dimRoundingMode?: unknown): boolean {
  return x.dtype === 'float32' && isPool2x2(x, poolSize, strides, pad, dimRoundingMode) && heapKernelsApply(x.shape[3]!);
}

/** y[n, i, j, c] = max of x[n, 2i..2i+1, 2j..2j+1, c], for a pool directPool2x2() accepted. */
export function maxPool2x2Heap(x: tf.Tensor4D): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, w, c] = x.shape;
  const { at, outs } = prepare(be, [x], [[n, h / 2, w / 2, c]], 0);
  const [xo, yo] = at as [number, number];
  k.max_pool_2x2(xo * 4, yo * 4, (n * h) / 2, w, c);
  return outs[0] as tf.Tensor4D;
}
