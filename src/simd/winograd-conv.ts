// A 3x3, stride-1, "same" convolution by Winograd's minimal filtering (Lavin and Gray, 2016), for
// training's forward convolutions and input gradients on the wasm backend's memory. Per tile of
// output pixels (4x4 by F(4x4, 3x3) where the sizes are multiples of 4, else 2x2 by F(2x2, 3x3))
// the input patch around it (6x6, or 4x4) is transformed (kernels.wat wino4_input / wino_input),
// multiplied position by position with the transformed filter (wino4_weights / wino_weights) and
// summed over the input channels (the 36 or 16 products of a tile's channels with the filter:
// conv_forward as a 1x1 convolution over the tiles), then transformed back to the output pixels
// (wino4_output / wino_output), which also adds a bias and applies a leaky ReLU for the daemon's
// folded layers. Per output pixel and channel pair that is 2.25 (F(4x4)) or 4 (F(2x2))
// multiply-adds where the direct loop (conv.ts) takes 9. The tiles are taken a chunk at a
// time, so that a chunk's transformed patches and products stay in cache.
import * as tf from '@tensorflow/tfjs-core';
import type { DirectConv } from './conv.js';
import { prepare, simd, type SimdKernels } from './heap.js';

/** Bytes of transformed patches and gradients per chunk (kept within a core's L2 cache). */
const CHUNK_BYTES = 256 * 1024;

/** Tiles per chunk of 16 positions: U (16·ci floats a tile) and V or M (16·co) together within CHUNK_BYTES. */
export function winogradChunk(ci: number, co: number): number {
  return Math.max(8, Math.floor(CHUNK_BYTES / (64 * (ci + co))));
}

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

/** The output tile side winogradConv uses for a map of h × w: 4 where both are multiples of 4, else 2. */
export function winogradTile(h: number, w: number): 2 | 4 {
  return h % 4 === 0 && w % 4 === 0 ? 4 : 2;
}

/** Whether winogradConv computes this convolution (see directConv for `conv`). */
export function winogradConvApplies(xShape: number[], filterShape: number[], conv: DirectConv): boolean {
  if (!enabled) return false;
  const [n, h, w, ci] = xShape as [number, number, number, number];
  const [kh, kw, , co] = filterShape as [number, number, number, number];
  const tile = winogradTile(h, w);
  return (
    kh === 3 && kw === 3 && conv.padTop === 1 && conv.padLeft === 1 && conv.outShape[1] === h && conv.outShape[2] === w &&
    h % 2 === 0 && w % 2 === 0 && ci % 4 === 0 && co % 8 === 0 && (n * h * w) / (tile * tile) >= 4
  );
}

/** The three loops of each form: input patches, filter, and back to output pixels. */
function forms(k: SimdKernels, tile: 2 | 4) {
  return tile === 4
    ? { positions: 36, input: k.wino4_input, weights: k.wino4_weights, output: k.wino4_output }
    : { positions: 16, input: k.wino_input, weights: k.wino_weights, output: k.wino_output };
}

/**
 * out [n, h, w, co] = act(the 3x3 "same" convolution of x [n, h, w, ci] with w [3, 3, ci, co] +
 * bias) (see winogradConvApplies); act is leaky ReLU max(z, alpha·z) (alpha 0: ReLU; 1, the
 * default: none), as the direct loop's.
 */
export function winogradConv(x: tf.Tensor4D, w: tf.Tensor4D, bias: tf.Tensor1D | null = null, alpha = 1): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, wd, ci] = x.shape;
  const co = w.shape[3];
  const tile = winogradTile(h, wd);
  const { positions, input, weights, output } = forms(k, tile);
  const tiles = (n * h * wd) / (tile * tile);
  // The chunk of the filter gradient's sizing (16 positions), scaled to this form's positions.
  const chunk = Math.max(4, Math.min(Math.floor((winogradChunk(ci, co) * 16) / positions), tiles));
  // The 1x1 products need at least 4 tiles: a last chunk of fewer joins the one before it.
  const most = chunk + 3;
  // Planes one cache line longer than their tiles, as in the filter gradient.
  const uPlane = most * ci + 16;
  const mPlane = most * co + 16;
  const filter = ci * co;
  const zeros = ci + ((8 - (ci % 8)) % 8);
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`winogradConv: activation slope ${alpha} is not within [0, 1]`);
  const inputs = bias ? [x, w, bias] : [x, w];
  const { heap, at, outs, scratch, free } = prepare(be, inputs, [[n, h, wd, co]], zeros + 2 * positions * filter + positions * (uPlane + mPlane));
  const [xo, wo] = at as [number, number];
  const bo = bias ? at[2]! * 4 : 0;
  const oo = at[inputs.length]!;
  const zero = scratch;
  const transformed = zero + zeros;
  const packed = transformed + positions * filter;
  const u = packed + positions * filter;
  const m = u + positions * uPlane;
  heap.fill(0, zero, zero + zeros);
  weights(wo * 4, transformed * 4, ci, co);
  for (let pos = 0; pos < positions; pos++) k.pack_filter((transformed + pos * filter) * 4, (packed + pos * filter) * 4, ci, co);
  for (let first = 0; first < tiles; ) {
    const left = tiles - first;
    const count = left - chunk < 4 ? left : chunk;
    input(xo * 4, u * 4, zero * 4, h, wd, ci, first, count, uPlane * 4);
    for (let pos = 0; pos < positions; pos++) {
      k.conv_forward((u + pos * uPlane) * 4, (packed + pos * filter) * 4, (m + pos * mPlane) * 4, zero * 4, 1, 1, count, ci, 1, count, co, 1, 1, 0, 0, 0, 1);
    }
    output(m * 4, oo * 4, h, wd, co, first, count, mPlane * 4, bo, alpha);
    first += count;
  }
  free();
  return outs[0] as tf.Tensor4D;
}
