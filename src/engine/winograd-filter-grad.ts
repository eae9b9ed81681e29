// The filter gradient of a 3x3, stride-1, "same" convolution by Winograd's minimal filtering
// F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), on the
// wasm backend's memory (../simd/kernels.wat, wino_*). Per tile of 2x2 output pixels the 4x4 input
// patch and the 2x2 output gradient are transformed, multiplied position by position and summed
// over all tiles, then transformed back to the 3x3 taps: 16 multiply-adds per tile and channel
// pair where the direct sum (conv_filter_grad) takes 36. The tiles are taken a chunk at a time,
// so that a chunk's transformed patches stay in cache while they are multiplied.
import * as tf from '@tensorflow/tfjs-core';
import { prepare, simd } from '../simd/heap.js';

/** Bytes of transformed patches and gradients per chunk (kept within a core's L2 cache). */
const CHUNK_BYTES = 256 * 1024;

/** Whether winogradFilterGrad computes dW for this convolution (NHWC, no dilation). */
export function winogradApplies(xShape: number[], dyShape: number[], filterShape: number[], stride: [number, number], padTop: number, padLeft: number): boolean {
  const [, h, w, ci] = xShape as [number, number, number, number];
  const [, ho, wo, co] = dyShape as [number, number, number, number];
  const [kh, kw] = filterShape as [number, number];
  return (
    kh === 3 && kw === 3 && stride[0] === 1 && stride[1] === 1 && padTop === 1 && padLeft === 1 &&
    ho === h && wo === w && h % 2 === 0 && w % 2 === 0 && ci % 4 === 0 && co % 8 === 0
  );
}

/** Tiles per chunk: U (16·ci floats a tile) and V (16·co) together within CHUNK_BYTES. */
export function winogradChunk(ci: number, co: number): number {
  return Math.max(8, Math.floor(CHUNK_BYTES / (64 * (ci + co))));
}

/** dW [3, 3, ci, co] of the convolution whose input is x and output gradient dy (see winogradApplies). */
export function winogradFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, w, ci] = x.shape;
  const co = dy.shape[3];
  const tiles = (n * h * w) / 4;
  const chunk = Math.min(winogradChunk(ci, co), tiles);
  // Planes one cache line longer than their tiles: 16 planes a power of two apart would all fall
  // in the same cache sets.
  const uPlane = chunk * ci + 16;
  const vPlane = chunk * co + 16;
  const uFloats = 16 * uPlane;
  const vFloats = 16 * vPlane;
  const mFloats = 16 * ci * co;
  const { heap, at, outs, scratch, free } = prepare(be, [x, dy], [[3, 3, ci, co]], ci + uFloats + vFloats + mFloats);
  const [xo, dyo, dwo] = at as [number, number, number];
  const zero = scratch;
  const u = zero + ci;
  const v = u + uFloats;
  const m = v + vFloats;
  heap.fill(0, zero, zero + ci);
  heap.fill(0, m, m + mFloats);
  for (let first = 0; first < tiles; first += chunk) {
    const count = Math.min(chunk, tiles - first);
    k.wino_input(xo * 4, u * 4, zero * 4, h, w, ci, first, count, uPlane * 4);
    k.wino_grad(dyo * 4, v * 4, h, w, co, first, count, vPlane * 4);
    k.wino_gemm(u * 4, v * 4, m * 4, count, ci, co, uPlane * 4, vPlane * 4);
  }
  k.wino_filter(m * 4, dwo * 4, ci, co);
  free();
  return outs[0] as tf.Tensor4D;
}
