// The filter gradient of a 3x3, stride-1, "same" convolution by Winograd's minimal filtering
// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), on the wasm
// backend's memory (../simd/kernels.wat). Per tile of output pixels (4x4 by F(4x4, 3x3) where the
// map's sides are multiples of 4, else 2x2 by F(2x2, 3x3)) the input patch around it (6x6, or
// 4x4) and the tile's output gradient are transformed (wino4_input and wino4_grad, or wino_input
// and wino_grad), multiplied position by position and summed over all tiles (36 or 16 products of
// every channel pair per tile, where the direct sum takes 9 per output pixel: 2.25 or 4 a pixel),
// then transformed back to the 3x3 taps (wino4_filter, wino_filter). The tiles are taken a chunk
// at a time, so that a chunk's transformed patches stay in cache while they are multiplied.
import * as tf from '@tensorflow/tfjs-core';
import { prepare, simd } from '../simd/heap.js';
import { winogradChunk } from '../simd/winograd-conv.js';

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

/** dW [3, 3, ci, co] of the convolution whose input is x and output gradient dy (see winogradApplies). */
export function winogradFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, w, ci] = x.shape;
  const co = dy.shape[3];
  const tile = h % 4 === 0 && w % 4 === 0 ? 4 : 2;
  const positions = tile === 4 ? 36 : 16;
  const tiles = (n * h * w) / (tile * tile);
  const chunk = Math.min(Math.max(4, Math.floor((winogradChunk(ci, co) * 16) / positions)), tiles);
  // Planes one cache line longer than their tiles: planes a power of two apart would all fall
  // in the same cache sets.
  const uPlane = chunk * ci + 16;
  const vPlane = chunk * co + 16;
  const uFloats = positions * uPlane;
  const vFloats = positions * vPlane;
  const mFloats = positions * ci * co;
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
    if (tile === 4) {
      k.wino4_input(xo * 4, u * 4, zero * 4, h, w, ci, first, count, uPlane * 4);
      k.wino4_grad(dyo * 4, v * 4, h, w, co, first, count, vPlane * 4);
      // m[pos] += Σ over the chunk's tiles of u[pos]ᵀ·v[pos]: the filter gradient of a 1x1 convolution.
      for (let pos = 0; pos < positions; pos++) {
        k.conv_filter_grad((u + pos * uPlane) * 4, (v + pos * vPlane) * 4, (m + pos * ci * co) * 4, 1, 1, count, ci, 1, count, co, 1, 1, 0, 0, 1, 1);
      }
    } else {
      k.wino_input(xo * 4, u * 4, zero * 4, h, w, ci, first, count, uPlane * 4);
      k.wino_grad(dyo * 4, v * 4, h, w, co, first, count, vPlane * 4);
      k.wino_gemm(u * 4, v * 4, m * 4, count, ci, co, uPlane * 4, vPlane * 4);
    }
  }
  if (tile === 4) k.wino4_filter(m * 4, dwo * 4, ci, co);
  else k.wino_filter(m * 4, dwo * 4, ci, co);
  free();
  return outs[0] as tf.Tensor4D;
}
