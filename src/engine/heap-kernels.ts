// Training kernels that run on the wasm backend's own memory.
//
// The wasm backend runs convolutions through XNNPACK at full speed, but every elementwise op is a
// separate pass over memory with its own broadcasting machinery: batch normalisation and its
// activation cost ~20 such passes per layer and training step. Here the same arithmetic is done
// in fused SIMD loops (../simd/kernels.wat) that read and write the tensors where the backend keeps
// them: batch norm + leaky ReLU (+ a 2x2 max pool after them) forward and backward, the 2x2
// max-pool gradient, the direct filter gradient of stride-1 convolutions (3x3 "same" ones go through winograd-filter-grad.ts), and the Adam update. Each function takes and returns ordinary tensors;
// callers ask heapKernelsApply() / heapKernelsAvailable() first (wasm backend, SIMD available,
// channel count a multiple of 4).
import * as tf from '@tensorflow/tfjs-core';
import { prepare, simd, wasmBackend } from '../simd/heap.js';

export { heapKernelsApply, heapKernelsAvailable } from '../simd/heap.js';

/** Pixels summed in float32 before the float64 running total (keeps batch statistics exact to ~1e-6). */
const CHUNK = 512;

/** Σ over pixels of acc's two c-vectors, accumulated in float64 from float32 chunks. */
function chunkedSums(heap: Float32Array, acc: number, c: number, pixels: number, run: (first: number, count: number) => void): [Float64Array, Float64Array] {
  const a = new Float64Array(c);
  const b = new Float64Array(c);
  for (let p = 0; p < pixels; p += CHUNK) {
    heap.fill(0, acc, acc + 2 * c);
    run(p, Math.min(CHUNK, pixels - p));
    for (let k = 0; k < c; k++) {
      a[k] += heap[acc + k]!;
      b[k] += heap[acc + c + k]!;
    }
  }
  return [a, b];
}

export interface BatchNormLeakyForward {
  /** leaky(γ·(x − μ)/√(σ² + ε) + β), the shape of x (with `pool`: its 2x2 max pool). */
  y: tf.Tensor;
  /** Batch mean and (biased) variance per channel. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  /**
   * With `pool`: the per-channel scale and shift the activations were computed with, by which
   * batchNormLeakyBackward routes the pooled gradient (recomputed from the saved statistics they
   * could differ in the last bit, and near-ties go to another pixel).
   */
  activation?: PooledActivation;
}

export interface PooledActivation {
  scale: tf.Tensor1D;
  shift: tf.Tensor1D;
}

/**
 * Batch normalisation over all axes but the last, then leaky ReLU with slope alpha (0 ≤ alpha ≤ 1;
 * 1: no activation), in two passes: per-channel sums, then scale, shift and activate. With `pool`
 * (x NHWC of even height and width) the second pass also takes the 2x2, stride-2 max pool and
 * writes only the pooled activation.
 */
export function batchNormLeakyForward(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number, alpha: number, pool = false): BatchNormLeakyForward {
  const { be, k } = simd();
  const c = x.shape[x.rank - 1]!;
  const pixels = x.size / c;
  const [n, h, w] = x.shape as [number, number, number, number];
  const yShape = pool ? [n, h / 2, w / 2, c] : x.shape;
  // With the pool, scale and shift are outputs too (see BatchNormLeakyForward.activation).
  const { heap, at, outs, scratch, free } = prepare(be, [x, gamma, beta], pool ? [yShape, [c], [c], [c], [c]] : [yShape, [c], [c]], 4 * c);
  const [xo, go, bo, yo, meanO, varO] = at as [number, number, number, number, number, number];
  const [scale, shift, acc] = pool ? [at[6]!, at[7]!, scratch] : [scratch, scratch + c, scratch + 2 * c];
  const [sum, sq] = chunkedSums(heap, acc, c, pixels, (first, count) => k.bn_stats((xo + first * c) * 4, count, c, acc * 4));
  for (let i = 0; i < c; i++) {
    const mu = sum[i]! / pixels;
    const va = Math.max(0, sq[i]! / pixels - mu * mu);
    heap[meanO + i] = mu;
    heap[varO + i] = va;
    heap[scale + i] = heap[go + i]! / Math.sqrt(va + epsilon);
    heap[shift + i] = heap[bo + i]! - mu * heap[scale + i]!;
  }
  if (pool) k.bn_apply_pool(xo * 4, yo * 4, (n * h) / 2, w, c, scale * 4, shift * 4, alpha);
  else k.bn_apply(xo * 4, yo * 4, pixels, c, scale * 4, shift * 4, alpha);
  free();
  const activation = pool ? { scale: outs[3] as tf.Tensor1D, shift: outs[4] as tf.Tensor1D } : undefined;
  return { y: outs[0]!, mean: outs[1] as tf.Tensor1D, variance: outs[2] as tf.Tensor1D, activation };
}

/**
 * Gradients of batchNormLeakyForward for the upstream gradient dy, from the saved input and batch
 * statistics, in two passes (m values per channel, r = 1/√(σ² + ε), x̂ = (x − μ)·r):
 *   dz = dy·(z > 0 ? 1 : α),  dβ = Σ dz,  dγ = Σ dz·x̂ = r·(Σ dz·x − μ·dβ),
 *   dx = γ·r·(dz − (dβ + x̂·dγ)/m) = scale·dz − t0 − x·t1
 * With `pool` (the forward pass's BatchNormLeakyForward.activation), dy is the gradient of the
 * pooled activation, and the first pass routes it through the pool as well (the activations
 * computed again from x, as the forward pass computed them).
 */
export function batchNormLeakyBackward(
  dy: tf.Tensor,
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  mean: tf.Tensor1D,
  variance: tf.Tensor1D,
  epsilon: number,
  alpha: number,
  pool: PooledActivation | null = null,
): { dx: tf.Tensor; dGamma: tf.Tensor1D; dBeta: tf.Tensor1D } {
  const { be, k } = simd();
  const c = x.shape[x.rank - 1]!;
  const pixels = x.size / c;
  const inputs = [dy, x, gamma, beta, mean, variance, ...(pool ? [pool.scale, pool.shift] : [])];
  const { heap, at, outs, scratch, free } = prepare(be, inputs, [x.shape, [c], [c]], 6 * c);
  const [dyo, xo, go, bo, muO, vaO] = at as [number, number, number, number, number, number];
  const [dxo, dgo, dbo] = at.slice(inputs.length) as [number, number, number];
  const [ascale, ashift] = pool ? (at.slice(6, 8) as [number, number]) : [0, 0];
  const [scale, shift, t0, t1, acc] = [scratch, scratch + c, scratch + 2 * c, scratch + 3 * c, scratch + 4 * c];
  const r = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    r[i] = 1 / Math.sqrt(heap[vaO + i]! + epsilon);
    heap[scale + i] = heap[go + i]! * r[i]!;
    heap[shift + i] = heap[bo + i]! - heap[muO + i]! * heap[scale + i]!;
  }
  // With the pool: the pooled gradient is routed into dz window row by window row, as far as each
  // chunk of the sums reaches, and the chunk summed while its rows are still in cache. The chunks
  // are those of bn_grad_sums, so that the sums (and so training) come out the same either way.
  const windowRowPixels = 2 * x.shape[2]!;
  let routed = 0;
  const [dBeta, dzx] = pool
    ? chunkedSums(heap, acc, c, pixels, (first, count) => {
        const rows = Math.ceil((first + count) / windowRowPixels) - routed;
        if (rows > 0) {
          const at = routed * windowRowPixels * c;
          k.bn_pool_grad((xo + at) * 4, (dyo + at / 4) * 4, (dxo + at) * 4, rows, windowRowPixels / 2, c, ascale * 4, ashift * 4, scale * 4, shift * 4, alpha);
          routed += rows;
        }
        k.bn_dz_sums((xo + first * c) * 4, (dxo + first * c) * 4, count, c, acc * 4);
      })
    : chunkedSums(heap, acc, c, pixels, (first, count) =>
        k.bn_grad_sums((xo + first * c) * 4, (dyo + first * c) * 4, (dxo + first * c) * 4, count, c, scale * 4, shift * 4, alpha, acc * 4),
      );
  for (let i = 0; i < c; i++) {
    const mu = heap[muO + i]!;
    const dGamma = r[i]! * (dzx[i]! - mu * dBeta[i]!);
    heap[dgo + i] = dGamma;
    heap[dbo + i] = dBeta[i]!;
    const s = heap[scale + i]!;
    heap[t1 + i] = (s * r[i]! * dGamma) / pixels;
    heap[t0 + i] = (s * dBeta[i]!) / pixels - mu * heap[t1 + i]!;
  }
  k.bn_grad_input(xo * 4, dxo * 4, pixels, c, scale * 4, t0 * 4, t1 * 4);
  free();
  return { dx: outs[0]!, dGamma: outs[1] as tf.Tensor1D, dBeta: outs[2] as tf.Tensor1D };
}

/**
 * MaxPoolGrad for 2x2 windows with stride 2 on an even-sized NHWC input: each window's gradient
 * goes to the first position holding its maximum (as tfjs's own kernel does); one pass.
 */
export function maxPool2x2GradHeap(dy: tf.Tensor4D, x: tf.Tensor4D, y: tf.Tensor4D): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, w, c] = x.shape;
  const { at, outs } = prepare(be, [dy, x, y], [x.shape], 0);
  const [dyo, xo, yo, dxo] = at as [number, number, number, number];
  k.max_pool_2x2_grad(xo * 4, yo * 4, dyo * 4, dxo * 4, (n * h) / 2, w, c);
  return outs[0] as tf.Tensor4D;
}

/** The filter of a convolution's input gradient: rotated by 180° with in/out channels swapped. */
export function rotateFilterHeap(w: tf.Tensor4D): tf.Tensor4D {
  const be = wasmBackend();
  if (!be) throw new Error('heap kernels need the wasm backend');
  const [kh, kw, ci, co] = w.shape;
  const { heap, at, outs } = prepare(be, [w], [[kh, kw, co, ci]], 0);
  const [wo, oo] = at as [number, number];
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const src = wo + ((kh - 1 - a) * kw + (kw - 1 - b)) * ci * co;
      const dst = oo + (a * kw + b) * co * ci;
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) heap[dst + o * ci + i] = heap[src + i * co + o]!;
    }
  }
  return outs[0] as tf.Tensor4D;
}

export interface AdamConstants {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** 1/(1 − β1^t) and 1/(1 − β2^t): the bias corrections of this step. */
  c1: number;
  c2: number;
}

/**
 * One Adam step for a variable: updates the moment tensors m and v where they lie (the caller
 * guarantees they share their memory with nothing) and returns the new weights as a new tensor
 * (weights are never changed in place: the backend caches packed convolution filters by tensor).
 */
export function adamStepHeap(w: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, a: AdamConstants): tf.Tensor {
  const { be, k } = simd();
  const { at, outs } = prepare(be, [w, g, m, v], [w.shape], 0);
  const [wo, go, mo, vo, out] = at as [number, number, number, number, number];
  k.adam(wo * 4, go * 4, mo * 4, vo * 4, out * 4, w.size, a.learningRate, a.beta1, a.beta2, a.epsilon, a.c1, a.c2);
  return outs[0]!;
}

/** A copy of t in memory of its own (tf.clone shares memory on wasm once registerWasmGradients ran). */
export function copyHeap(t: tf.Tensor): tf.Tensor {
  const be = wasmBackend();
  if (!be) throw new Error('heap kernels need the wasm backend');
  const { heap, at, outs } = prepare(be, [t], [t.shape], 0);
  heap.copyWithin(at[1]!, at[0]!, at[0]! + t.size);
  return outs[0]!;
}

/** x [n, h, w, c] with its channels zero-padded to c4 (≥ c), in one pass (tf.pad takes ~8x longer on wasm). */
export function widenChannelsHeap(x: tf.Tensor4D, c4: number): tf.Tensor4D {
  const be = wasmBackend();
  if (!be) throw new Error('heap kernels need the wasm backend');
  const [n, h, w, c] = x.shape;
  const { heap, at, outs } = prepare(be, [x], [[n, h, w, c4]], 0);
  const [xo, oo] = at as [number, number];
  const pixels = n * h * w;
  heap.fill(0, oo, oo + pixels * c4);
  if (c === 1) for (let p = 0; p < pixels; p++) heap[oo + p * c4] = heap[xo + p]!;
  else for (let p = 0; p < pixels; p++) heap.copyWithin(oo + p * c4, xo + p * c, xo + (p + 1) * c);
  return outs[0] as tf.Tensor4D;
}

/**
 * A one-channel x [n, h, w, 1] as [n, h, wo, lanes]: lane b of column j holds x[.., j + b − padLeft]
 * (zero outside the input, and in the lanes from kw on). The filter gradient of a one-channel
 * convolution is then one with a single tap column whose kw taps are channels: the SIMD kernel's
 * four input lanes carry three taps of a 3x3 filter instead of one channel and three zeros.
 */
export function tapColumnsHeap(x: tf.Tensor4D, wo: number, kw: number, padLeft: number, lanes: number): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, w, c] = x.shape;
  if (c !== 1 || kw > lanes || lanes % 4 !== 0) throw new Error(`tapColumnsHeap: ${c} channels, ${kw} taps in ${lanes} lanes not supported`);
  const { at, outs } = prepare(be, [x], [[n, h, wo, lanes]], 0);
  const [xo, oo] = at as [number, number];
  k.tap_columns(xo * 4, oo * 4, n * h, w, wo, kw, padLeft, lanes);
  return outs[0] as tf.Tensor4D;
}

/** Whether no other tensor shares this tensor's memory (so that writing it in place is safe). */
export function ownsMemory(t: tf.Tensor): boolean {
  const be = wasmBackend();
  return be !== null && be.dataIdMap.get(t.dataId).refCount === 1;
}

/**
 * Filter gradient of a stride-1 NHWC convolution straight from x and dy (no transposes, no packed
 * copy): dw[a, b, i, o] = Σ x[n, y + a − top, x + b − left, i] · dy[n, y, x, o]. Needs the input
 * channels to be a multiple of 4 and the output channels a multiple of 8.
 */
/** Bytes of x and dy rows one block of the filter gradient reads (about a first-level data cache: 32 KiB did best of 16–128 KiB). */
export const FILTER_GRAD_BLOCK_BYTES = 32768;

/** Output rows per block: as many as fit FILTER_GRAD_BLOCK_BYTES with the kh − 1 extra rows of x. */
export function filterGradRows(xRowFloats: number, dyRowFloats: number, kh: number, ho: number): number {
  const rows = Math.floor((FILTER_GRAD_BLOCK_BYTES / 4 - (kh - 1) * xRowFloats) / (xRowFloats + dyRowFloats));
  return Math.max(1, Math.min(ho, rows));
}

export function convFilterGradHeap(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], padTop: number, padLeft: number): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, w, ci] = x.shape;
  const [, ho, wo, co] = dy.shape;
  const [kh, kw] = filterShape;
  if (ci % 4 !== 0 || co % 8 !== 0) throw new Error(`convFilterGradHeap: channels ${ci} -> ${co} not supported`);
  const { at, outs } = prepare(be, [x, dy], [filterShape], 0);
  const [xo, dyo, dwo] = at as [number, number, number];
  k.conv_filter_grad(xo * 4, dyo * 4, dwo * 4, n, h, w, ci, ho, wo, co, kh, kw, padTop, padLeft, filterGradRows(w * ci, wo * co, kh, ho), 0);
  return outs[0] as tf.Tensor4D;
}
