// A 3x3, stride-1, "same" convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
// 2016), for training's forward convolutions and input gradients on the wasm backend's memory:
// per tile of 2x2 output pixels the 4x4 input patch is transformed (kernels.wat wino_input, as
// the Winograd filter gradient does), multiplied position by position with the transformed filter
// (wino_weights) and summed over the input channels (16 products of a tile's channels with the
// filter: conv_forward as a 1x1 convolution over the tiles), then transformed back to the four
// output pixels (wino_output). 16 multiply-adds per tile and channel pair where the direct loop
// takes 36. The tiles are taken a chunk at a time, so that a chunk's transformed patches and
// products stay in cache. The daemon's folded inference keeps the direct loop (../simd/conv.ts):
// its results do not change.
import * as tf from '@tensorflow/tfjs-core';
import type { DirectConv } from '../simd/conv.js';
import { prepare, simd } from '../simd/heap.js';
import { winogradChunk } from './winograd-filter-grad.js';

let enabled = true;

/**
 * Switch the Winograd convolution on or off (then the direct loop takes these convolutions too);
 * returns the previous setting. For the benchmark, which measures both in one run.
 */
export function useWinogradConvolutions(on: boolean): boolean {
  const previous = enabled;
  enabled = on;
  return previous;
}

/** Whether winogradConv computes this convolution (see directConv for `conv`). */
export function winogradConvApplies(xShape: number[], filterShape: number[], conv: DirectConv): boolean {
  if (!enabled) return false;
  const [n, h, w, ci] = xShape as [number, number, number, number];
  const [kh, kw, , co] = filterShape as [number, number, number, number];
  return (
    kh === 3 && kw === 3 && conv.padTop === 1 && conv.padLeft === 1 && conv.outShape[1] === h && conv.outShape[2] === w &&
    h % 2 === 0 && w % 2 === 0 && ci % 4 === 0 && co % 8 === 0 && (n * h * w) / 4 >= 4
  );
}

/** out [n, h, w, co] = the 3x3 "same" convolution of x [n, h, w, ci] with w [3, 3, ci, co] (see winogradConvApplies). */
export function winogradConv(x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, wd, ci] = x.shape;
  const co = w.shape[3];
  const tiles = (n * h * wd) / 4;
  const chunk = Math.max(4, Math.min(winogradChunk(ci, co), tiles));
  // The 1x1 products need at least 4 tiles: a last chunk of fewer joins the one before it.
  const most = chunk + 3;
  // Planes one cache line longer than their tiles, as in the filter gradient.
  const uPlane = most * ci + 16;
  const mPlane = most * co + 16;
  const filter = ci * co;
  const zeros = ci + ((8 - (ci % 8)) % 8);
  const { heap, at, outs, scratch, free } = prepare(be, [x, w], [[n, h, wd, co]], zeros + 2 * 16 * filter + 16 * uPlane + 16 * mPlane);
  const [xo, wo, oo] = at as [number, number, number];
  const zero = scratch;
  const transformed = zero + zeros;
  const packed = transformed + 16 * filter;
  const u = packed + 16 * filter;
  const m = u + 16 * uPlane;
  heap.fill(0, zero, zero + zeros);
  k.wino_weights(wo * 4, transformed * 4, ci, co);
  for (let pos = 0; pos < 16; pos++) k.pack_filter((transformed + pos * filter) * 4, (packed + pos * filter) * 4, ci, co);
  for (let first = 0; first < tiles; ) {
    const left = tiles - first;
    const count = left - chunk < 4 ? left : chunk;
    k.wino_input(xo * 4, u * 4, zero * 4, h, wd, ci, first, count, uPlane * 4);
    for (let pos = 0; pos < 16; pos++) {
      k.conv_forward((u + pos * uPlane) * 4, (packed + pos * filter) * 4, (m + pos * mPlane) * 4, zero * 4, 1, 1, count, ci, 1, count, co, 1, 1, 0, 0, 0, 1);
    }
    k.wino_output(m * 4, oo * 4, h, wd, co, first, count, mPlane * 4);
    first += count;
  }
  free();
  return outs[0] as tf.Tensor4D;
}
