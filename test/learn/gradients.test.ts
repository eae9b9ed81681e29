import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engine/backend.js';
import { useWinogradConvolutions, winogradConv, winogradConvApplies, winogradTile } from '../../src/simd/winograd-conv.js';
import { convForwardHeap, directConv } from '../../src/simd/conv.js';

// The wasm convolution gradients (written as forward convolutions) against the cpu backend's own
// Conv2DBackpropFilter / Conv2DBackpropInput kernels, for strides, paddings and kernel sizes.
async function gradients(backend: string, stride: number, pad: 'same' | 'valid', k: number, ci = 3, co = 5, hw: [number, number] = [9, 10]): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend(backend);
  const x = tf.randomNormal([2, hw[0], hw[1], ci], 0, 1, 'float32', 1);
  const w = tf.randomNormal([k, k, ci, co], 0, 1, 'float32', 2);
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
      // 3 -> 5 channels: the forward-convolution path; 4 -> 8, 8 -> 16: the SIMD filter gradient (stride 1).
      // 1 -> 8: the SIMD path with the input channel zero-padded to 4.
      for (const [ci, co] of [
        [3, 5],
        [4, 8],
        [8, 16],
        [1, 8],
      ] as const) {
        const [cx, cw] = await gradients('cpu', s, p, k, ci, co);
        const [wx, ww] = await gradients('wasm', s, p, k, ci, co);
        // float32 sums of up to 2·9·10·25·16 products, accumulated in different orders
        expect(maxRelError(cx, wx)).toBeLessThan(5e-4);
        expect(maxRelError(cw, ww)).toBeLessThan(5e-4);
      }
    }
  });

  it('match the cpu backend when the SIMD filter gradient takes the rows a few at a time', async () => {
    await initBackend('wasm');
    const { filterGradRows } = await import('../../src/engine/heap-kernels.js');
    // 40 x 37 pixels of 32 channels: a few output rows per block, so tiles are carried in dw
    // from block to block and image to image, and blocks begin inside the padding rows.
    for (const [p, k] of [
      ['same', 3],
      ['valid', 3],
      ['same', 5],
    ] as const) {
      const ho = p === 'same' ? 40 : 40 - k + 1;
      expect(filterGradRows(37 * 32, 37 * 16, k, ho)).toBeLessThan(ho / 4);
      const [cx, cw] = await gradients('cpu', 1, p, k, 32, 16, [40, 37]);
      const [wx, ww] = await gradients('wasm', 1, p, k, 32, 16, [40, 37]);
      // sums of up to 2·40·37·32·25 products: errors relative to the largest value
      expect(errorOfLargest(cx, wx)).toBeLessThan(1e-5);
      expect(errorOfLargest(cw, ww)).toBeLessThan(1e-5);
    }
  });

  it('match the cpu backend where the filter gradient is taken by Winograd (3x3 "same" on even sizes)', async () => {
    await initBackend('wasm');
    const { winogradApplies } = await import('../../src/engine/winograd-filter-grad.js');
    const { winogradChunk } = await import('../../src/simd/winograd-conv.js');
    // Sizes down to one tile; 40 x 38 of 4 -> 8 channels is 760 tiles, more than one chunk
    // (the last one partial), so the sums are carried from chunk to chunk.
    expect(2 * 20 * 19).toBeGreaterThan(2 * winogradChunk(4, 8));
    // Sides that are multiples of 4 take 4x4 tiles (F(4x4, 3x3)): 8 x 12, and 40 x 40 of 4 -> 8
    // channels, 200 tiles, more than one chunk of them too.
    expect(2 * 10 * 10).toBeGreaterThan(Math.floor((winogradChunk(4, 8) * 16) / 36));
    for (const [ci, co, hw] of [
      [4, 8, [2, 2]],
      [8, 16, [6, 4]],
      [12, 24, [10, 14]],
      [4, 8, [40, 38]],
      [8, 16, [8, 12]],
      [4, 8, [40, 40]],
    ] as const) {
      expect(winogradApplies([2, hw[0], hw[1], ci], [2, hw[0], hw[1], co], [3, 3, ci, co], [1, 1], 1, 1)).toBe(true);
      const [cx, cw] = await gradients('cpu', 1, 'same', 3, ci, co, [hw[0], hw[1]]);
      const [wx, ww] = await gradients('wasm', 1, 'same', 3, ci, co, [hw[0], hw[1]]);
      // F(4x4)'s transforms multiply by up to 8 and divide by 24: a little more rounding.
      const tolerance = hw[0] % 4 === 0 && hw[1] % 4 === 0 ? 5e-5 : 1e-5;
      expect(errorOfLargest(cx, wx)).toBeLessThan(tolerance);
      expect(errorOfLargest(cw, ww)).toBeLessThan(tolerance);
    }
    // Odd sizes, other paddings, kernels and strides keep the direct sum.
    expect(winogradApplies([2, 9, 10, 4], [2, 9, 10, 8], [3, 3, 4, 8], [1, 1], 1, 1)).toBe(false);
    expect(winogradApplies([2, 10, 10, 4], [2, 8, 8, 8], [3, 3, 4, 8], [1, 1], 0, 0)).toBe(false);
    expect(winogradApplies([2, 10, 10, 4], [2, 10, 10, 8], [5, 5, 4, 8], [1, 1], 2, 2)).toBe(false);
    expect(winogradApplies([2, 10, 10, 4], [2, 5, 5, 8], [3, 3, 4, 8], [2, 2], 1, 1)).toBe(false);
    expect(winogradApplies([2, 10, 10, 3], [2, 10, 10, 8], [3, 3, 3, 8], [1, 1], 1, 1)).toBe(false);
  });
});

describe('the direct SIMD convolution (wasm Conv2D, stride 1)', () => {
  it('matches the cpu backend for paddings, kernel sizes, channel counts and row widths', async () => {
    await initBackend('wasm');
    const conv = async (backend: string, shape: [number, number, number, number], k: number, co: number, pad: 'same' | 'valid') => {
      await tf.setBackend(backend);
      const x = tf.randomNormal(shape, 0, 1, 'float32', 3);
      const w = tf.randomNormal([k, k, shape[3], co], 0, 1, 'float32', 4);
      const y = tf.conv2d(x, w, 1, pad);
      const out = { shape: y.shape, values: (await y.data()) as Float32Array };
      tf.dispose([x, w, y]);
      return out;
    };
    // widths 4 (one tile), 7 and 10 (the last tile overlaps), 13 to 23; one grey channel, 3, 5, 16, 24 in;
    // 8, 16 and 32 out; 'same' and 'valid'; 3x3, 5x5 and 1x1 filters.
    for (const [shape, k, co, pad] of [
      [[2, 6, 4, 1], 3, 8, 'same'],
      [[2, 9, 7, 3], 3, 16, 'same'],
      [[1, 10, 10, 16], 3, 32, 'same'],
      [[2, 11, 13, 24], 5, 8, 'same'],
      [[2, 11, 13, 16], 3, 16, 'valid'],
      [[1, 12, 9, 8], 5, 8, 'valid'],
      [[2, 5, 6, 16], 1, 8, 'same'],
      // rows wide enough that most tiles take the inner path (a tap row inside the input read
      // as one run), beside border tiles that take the tap-by-tap one
      [[2, 8, 20, 1], 3, 16, 'same'],
      [[1, 9, 17, 1], 5, 8, 'valid'],
      [[1, 6, 23, 5], 3, 8, 'same'],
    ] as const) {
      const cpu = await conv('cpu', shape as unknown as [number, number, number, number], k, co, pad);
      const wasm = await conv('wasm', shape as unknown as [number, number, number, number], k, co, pad);
      expect(wasm.shape).toEqual(cpu.shape);
      expect(errorOfLargest(cpu.values, wasm.values)).toBeLessThan(1e-5);
    }
  });

  it('adds the bias and applies ReLU or leaky ReLU in the same pass, as the fused convolution does', async () => {
    await initBackend('wasm');
    const { convForwardHeap, directConv } = await import('../../src/simd/conv.js');
    for (const [activation, alpha] of [
      ['linear', 1],
      ['relu', 0],
      ['leakyrelu', 0.1],
    ] as const) {
      const make = () => ({
        x: tf.randomNormal([2, 9, 11, 16], 0, 1, 'float32', 5) as tf.Tensor4D,
        filter: tf.randomNormal([3, 3, 16, 24], 0, 1, 'float32', 6) as tf.Tensor4D,
        bias: tf.randomNormal([24], 0, 3, 'float32', 7) as tf.Tensor1D,
      });
      await tf.setBackend('cpu');
      const c = make();
      const expected = (await tf.fused.conv2d({ ...c, strides: 1, pad: 'same', activation, leakyreluAlpha: alpha }).data()) as Float32Array;
      await tf.setBackend('wasm');
      const w = make();
      const conv = directConv(w.x, w.filter, 1, 'same');
      expect(conv).not.toBeNull();
      const got = (await convForwardHeap(w.x, w.filter, conv!, w.bias, alpha).data()) as Float32Array;
      expect(errorOfLargest(expected, got)).toBeLessThan(1e-5);
      if (activation === 'relu') expect(Math.min(...got) === 0).toBe(true); // (-0 for negative sums: max(z, 0·z))
    }
  });

  it('declines what it does not cover (strides, too few output channels or columns)', async () => {
    await initBackend('wasm');
    const { directConv } = await import('../../src/simd/conv.js');
    const x = { shape: [1, 8, 8, 4], dtype: 'float32' };
    expect(directConv(x, { shape: [3, 3, 4, 8], dtype: 'float32' }, 1, 'same')).not.toBeNull();
    expect(directConv(x, { shape: [3, 3, 4, 8], dtype: 'float32' }, 2, 'same')).toBeNull();
    expect(directConv(x, { shape: [3, 3, 4, 12], dtype: 'float32' }, 1, 'same')).toBeNull();
    expect(directConv({ shape: [1, 8, 3, 4], dtype: 'float32' }, { shape: [3, 3, 4, 8], dtype: 'float32' }, 1, 'same')).toBeNull();
    expect(directConv(x, { shape: [3, 3, 4, 8], dtype: 'float32' }, 1, 'same', 2)).toBeNull();
  });
});

function errorOfLargest(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let e = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    e = Math.max(e, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(a[i]!));
  }
  return e / m;
}

async function onBackend<T>(backend: string, f: () => Promise<T>): Promise<T> {
  await tf.setBackend(backend);
  return f();
}

describe('the Winograd convolution (training\'s 3x3 "same" convolutions on even sizes)', () => {
  it('matches the cpu backend and the direct loop, across chunks of tiles, and says where it applies', async () => {
    await initBackend('wasm');
    const conv = async (backend: string, shape: [number, number, number, number], co: number) => {
      await tf.setBackend(backend);
      const x = tf.randomNormal(shape, 0, 1, 'float32', 5);
      const w = tf.randomNormal([3, 3, shape[3], co], 0, 1, 'float32', 6);
      const y = tf.conv2d(x, w, 1, 'same');
      const out = (await y.data()) as Float32Array;
      tf.dispose([x, w, y]);
      return out;
    };
    // F(2x2, 3x3) where a side is not a multiple of 4: one chunk; 343 tiles, whose last chunk of 2
    // joins the one before; wide layers. F(4x4, 3x3) elsewhere: several chunks, wide layers.
    for (const [shape, co, tile] of [
      [[1, 10, 10, 16], 32, 2],
      [[7, 14, 14, 4], 8, 2],
      [[2, 8, 6, 32], 64, 2],
      [[4, 24, 24, 16], 16, 4],
      [[2, 12, 8, 16], 32, 4],
      [[8, 16, 20, 32], 64, 4],
    ] as const) {
      const s = shape as unknown as [number, number, number, number];
      expect(winogradTile(s[1], s[2])).toBe(tile);
      expect(winogradConvApplies(s, [3, 3, s[3], co], directConv({ shape: s, dtype: 'float32' }, { shape: [3, 3, s[3], co], dtype: 'float32' }, 1, 'same')!)).toBe(true);
      const cpu = await conv('cpu', s, co);
      const winograd = await conv('wasm', s, co);
      const previous = useWinogradConvolutions(false);
      const direct = await conv('wasm', s, co);
      useWinogradConvolutions(previous);
      // F(4x4)'s transforms multiply by up to 8 and divide by 24: a little more rounding.
      const tolerance = tile === 4 ? 5e-5 : 1e-5;
      expect(errorOfLargest(cpu, winograd)).toBeLessThan(tolerance);
      expect(errorOfLargest(direct, winograd)).toBeLessThan(tolerance);
      // Not bit for bit the direct loop's: the sums run in another order.
      expect(Array.from(direct).some((v, i) => v !== winograd[i])).toBe(true);
    }
    await tf.setBackend('wasm');
    const declines = (x: [number, number, number, number], k: number, co: number, pad: 'same' | 'valid') => {
      const c = directConv({ shape: x, dtype: 'float32' }, { shape: [k, k, x[3], co], dtype: 'float32' }, 1, pad);
      return c === null || !winogradConvApplies(x, [k, k, x[3], co], c);
    };
    expect(declines([2, 8, 8, 1], 3, 16, 'same')).toBe(true); // one input channel (the first layer)
    expect(declines([2, 9, 8, 16], 3, 16, 'same')).toBe(true); // odd height
    expect(declines([2, 8, 8, 16], 3, 16, 'valid')).toBe(true); // not "same"
    expect(declines([2, 8, 8, 16], 5, 16, 'same')).toBe(true); // 5x5
    expect(declines([1, 2, 2, 16], 3, 16, 'same')).toBe(true); // fewer than 4 tiles
  });
});

describe('the Winograd convolution of the daemon\'s folded layers', () => {
  it('adds the bias and applies ReLU or leaky ReLU as the direct loop does', async () => {
    await initBackend('wasm');
    await tf.setBackend('wasm');
    for (const [shape, co] of [
      [[2, 12, 8, 16], 32],
      [[3, 10, 6, 8], 16],
    ] as const) {
      const s = shape as unknown as [number, number, number, number];
      const x = tf.randomNormal(s, 0, 1, 'float32', 7) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, s[3], co], 0, 0.3, 'float32', 8) as tf.Tensor4D;
      const b = tf.randomNormal([co], 0, 1, 'float32', 9) as tf.Tensor1D;
      const conv = directConv(x, w, 1, 'same')!;
      for (const alpha of [0, 0.1, 1]) {
        const direct = convForwardHeap(x, w, conv, b, alpha);
        const winograd = winogradConv(x, w, b, alpha);
        expect(errorOfLargest(direct.dataSync() as Float32Array, winograd.dataSync() as Float32Array)).toBeLessThan(5e-5);
        // The activation was applied: no value below alpha times the most negative pre-activation.
        if (alpha === 0) expect(Math.min(...(winograd.dataSync() as Float32Array))).toBeGreaterThanOrEqual(0);
        tf.dispose([direct, winograd]);
      }
      tf.dispose([x, w, b]);
    }
  });
});

describe('wasm training kernels', () => {
  it('max-pool gradients match the cpu backend, with and without the SIMD path (channels % 4)', async () => {
    await initBackend('wasm');
    const { heapKernelsApply } = await import('../../src/engine/heap-kernels.js');
    expect(heapKernelsApply(4)).toBe(true);
    expect(heapKernelsApply(3)).toBe(false);
    for (const c of [4, 8, 3]) {
      const grad = (backend: string) =>
        onBackend(backend, async () => {
          const x = tf.randomNormal([2, 8, 10, c], 0, 1, 'float32', 7);
          const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid'))))(x);
          const out = (await g.data()) as Float32Array;
          tf.dispose([x, g]);
          return out;
        });
      const cpu = await grad('cpu');
      const wasm = await grad('wasm');
      expect(maxRelError(cpu, wasm)).toBeLessThan(1e-6);
      expect(wasm.filter((v) => v !== 0).length).toBe(2 * 4 * 5 * c); // one position per window
    }
  });

  it('the 2x2 max pool equals the cpu backend\'s where the SIMD pass takes it, and is declined elsewhere', async () => {
    await initBackend('wasm');
    const { directPool2x2, maxPool2x2Heap } = await import('../../src/simd/pool.js');
    for (const [shape, taken] of [
      [[3, 8, 10, 4], true],
      [[2, 6, 4, 16], true],
      [[2, 8, 10, 3], false], // channels not a multiple of 4
      [[2, 7, 10, 4], false], // odd height
    ] as const) {
      const pool = (backend: string) =>
        onBackend(backend, async () => {
          const x = tf.randomNormal([...shape], 0, 1, 'float32', 11);
          const y = tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid');
          const out = (await y.data()) as Float32Array;
          tf.dispose([x, y]);
          return out;
        });
      const cpu = await pool('cpu');
      const wasm = await pool('wasm');
      expect(Array.from(wasm)).toEqual(Array.from(cpu));
      expect(directPool2x2({ shape: [...shape], dtype: 'float32' }, 2, 2, 'valid')).toBe(taken);
      if (taken) {
        const x = tf.randomNormal([...shape], 0, 1, 'float32', 12) as tf.Tensor4D;
        const direct = maxPool2x2Heap(x);
        const stock = tf.max(tf.stack([0, 1].flatMap((i) => [0, 1].map((j) => tf.stridedSlice(x, [0, i, j, 0], [...shape], [1, 2, 2, 1])))), 0);
        expect(Array.from(direct.dataSync())).toEqual(Array.from(stock.dataSync()));
        tf.dispose([x, direct, stock]);
      }
    }
    expect(directPool2x2({ shape: [2, 8, 8, 4], dtype: 'float32' }, 3, 2, 'valid')).toBe(false);
    expect(directPool2x2({ shape: [2, 8, 8, 4], dtype: 'float32' }, 2, 2, 'same')).toBe(false);
  });

  it('transposed matrix products match the cpu backend (operands transposed, or the product turned)', async () => {
    await initBackend('wasm');
    // [m, k, n]: small operands; a small a and a large b (a dense layer's dy·Wᵀ, computed turned); the reverse.
    for (const [m, k, n] of [
      [5, 7, 4],
      [2, 40, 30],
      [30, 40, 2],
    ] as const)
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const run = (backend: string) =>
        onBackend(backend, async () => {
          const a = tf.randomNormal(ta ? [k, m] : [m, k], 0, 1, 'float32', 3);
          const b = tf.randomNormal(tb ? [n, k] : [k, n], 0, 1, 'float32', 4);
          const y = tf.matMul(a, b, ta, tb);
          const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.matMul(p, q, ta, tb))))([a, b]);
          const out = [(await y.data()) as Float32Array, (await ga!.data()) as Float32Array, (await gb!.data()) as Float32Array];
          tf.dispose([a, b, y, ga!, gb!]);
          return out;
        });
      const cpu = await run('cpu');
      const wasm = await run('wasm');
      // Sums of 40 products differ by float32 rounding between the backends' summation orders.
      cpu.forEach((v, i) => expect(maxRelError(v, wasm[i]!)).toBeLessThan(k > 10 ? 1e-4 : 1e-5));
    }
  });
});

describe('fused Adam', () => {
  it('follows tfjs Adam step for step, and its moments are tfjs Adam weights', async () => {
    await initBackend('wasm');
    const { createAdam } = await import('../../src/engine/adam.js');
    const shapes = [[3, 3, 4, 8], [121], [7]];
    const start = shapes.map((s, i) => tf.randomNormal(s, 0, 1, 'float32', 10 + i));
    const runWith = (make: () => tf.Optimizer) => {
      const vars = start.map((t) => tf.variable(t.clone()));
      const opt = make();
      for (let step = 0; step < 5; step++) {
        tf.tidy(() => {
          const grads = vars.map((v, i) => ({ name: v.name, tensor: tf.mul(tf.randomNormal(v.shape, 0, 1, 'float32', 1 + 100 * step + i), step + 1) }));
          opt.applyGradients(grads);
        });
      }
      const out = vars.map((v) => v.dataSync().slice() as Float32Array);
      return { out, optimizer: opt, vars };
    };
    const stock = runWith(() => tf.train.adam(0.01));
    const fused = runWith(() => createAdam(0.01));
    stock.out.forEach((w, i) => expect(maxRelError(w, fused.out[i]!)).toBeLessThan(1e-5));
    const [sw, fw] = [await stock.optimizer.getWeights(), await fused.optimizer.getWeights()];
    // Variable names are numbered per run: compare the moment names without the number.
    const kind = (n: string) => n.replace(/^\d+\//, '');
    expect(fw.map((w) => kind(w.name))).toEqual(sw.map((w) => kind(w.name)));
    sw.forEach((w, i) => expect(maxRelError(w.tensor.dataSync() as Float32Array, fw[i]!.tensor.dataSync() as Float32Array)).toBeLessThan(1e-5));
  });
});

describe('copies on wasm', () => {
  it('share memory (Identity, Cast to the same dtype), and Adam still never writes a moment another tensor shares', async () => {
    await initBackend('wasm');
    const { createAdam } = await import('../../src/engine/adam.js');
    const { ownsMemory } = await import('../../src/engine/heap-kernels.js');
    const x = tf.tensor1d([1, 2, 3]);
    const copy = tf.clone(x);
    const cast = tf.cast(x, 'float32');
    expect(copy.dataId).toBe(x.dataId);
    expect(cast.dataId).toBe(x.dataId);
    expect(ownsMemory(x)).toBe(false);
    tf.dispose([copy, cast]);
    expect(ownsMemory(x)).toBe(true);
    expect(Array.from(x.dataSync())).toEqual([1, 2, 3]);
    expect(tf.cast(x, 'int32').dataId).not.toBe(x.dataId);

    const v = tf.variable(tf.tensor1d([0.5, -0.5, 2]));
    const opt = createAdam(0.1);
    const step = (g: number[]) => tf.tidy(() => opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]));
    step([1, 2, 3]);
    const [, first, second] = await opt.getWeights();
    // A snapshot of the moments (as a checkpoint takes one) shares their memory...
    const snapshot = [tf.clone(first!.tensor), tf.clone(second!.tensor)];
    const before = snapshot.map((t) => Array.from(t.dataSync()));
    step([-4, 5, -6]);
    // ...and keeps its values when the next step updates the moments.
    expect(snapshot.map((t) => Array.from(t.dataSync()))).toEqual(before);
    const [, m] = await opt.getWeights();
    expect(Array.from(m!.tensor.dataSync())).not.toEqual(before[0]);
    tf.dispose([x, v, ...snapshot]);
    opt.dispose();
  });
});

describe('closed-form batch-norm gradient', () => {
  it('matches tfjs-layers batch normalisation in training mode', async () => {
    const { buildModel, logitsModel } = await import('../../src/learn/architectures.js');
    const { useFastTraining } = await import('../../src/engine/fast-training.js');
    await initBackend('wasm');
    const model = buildModel('pw-tiny-32', { numClasses: 8, seed: 1 });
    const lm = logitsModel(model);
    const x = tf.randomUniform([6, 32, 32, 1], 0, 1, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32'), 8);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const run = () => {
      const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(lm.apply(x, { training: true }) as tf.Tensor)), 1))) as tf.Scalar, vars);
      return { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync() as Float32Array) };
    };
    const start = model.getWeights().map((w) => tf.clone(w));
    const stock = run();
    const stockStats = model.getWeights().map((w) => w.dataSync().slice());
    model.setWeights(start);
    const { heapKernelsApply } = await import('../../src/engine/heap-kernels.js');
    // pw-tiny-32 has 8, 16 and 32 channels: batch norm and leaky ReLU run fused in SIMD.
    expect([8, 16, 32].every((c) => heapKernelsApply(c))).toBe(true);
    const restore = useFastTraining(model);
    const fast = run();
    restore();
    expect(fast.loss).toBeCloseTo(stock.loss, 5);
    stock.grads.forEach((g, i) => {
      for (let j = 0; j < g.length; j++) expect(Math.abs(g[j]! - fast.grads[i]![j]!)).toBeLessThan(1e-3 * (1e-2 + Math.abs(g[j]!)) + 1e-5);
    });
    // Moving statistics are updated the same way (to float rounding: y is computed as x·a + b).
    model.getWeights().forEach((w, i) => w.dataSync().forEach((v, j) => expect(Math.abs(v - stockStats[i]![j]!)).toBeLessThan(1e-5)));
  });
});

describe('batch norm, leaky ReLU and 2x2 max pool in one pass', () => {
  it('gives the values and gradients of tfjs batch norm, leaky ReLU and max pool on the cpu backend (ties included)', async () => {
    const { batchNormLeakyTraining } = await import('../../src/engine/fast-batchnorm.js');
    await initBackend('wasm');
    const alpha = 0.1;
    const epsilon = 1e-3;
    // 8 rows of 40 pixels: the pooled gradient's sums are taken in chunks of 6 window rows, the
    // last one shorter. Sparse blobs: after the batch norm many windows hold equal values.
    const inputs = () =>
      tf.tidy(() => {
        const x = tf.mul(tf.randomUniform([4, 8, 40, 8], 0, 1, 'float32', 5), tf.cast(tf.greater(tf.randomUniform([4, 8, 40, 8], 0, 1, 'float32', 6), 0.6), 'float32'));
        return [x, tf.randomUniform([8], 0.5, 1.5, 'float32', 7), tf.randomNormal([8], 0, 0.2, 'float32', 8), tf.randomNormal([4, 4, 20, 8], 0, 1, 'float32', 9)];
      });
    const run = async (backend: string, forward: (x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D) => tf.Tensor) => {
      await tf.setBackend(backend);
      const [x, g, b, r] = inputs() as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D];
      const y = forward(x, g, b);
      const f = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(forward(xi, gi as tf.Tensor1D, bi as tf.Tensor1D), r));
      const grads = tf.grads(f)([x, g, b]);
      const out = { shape: y.shape, y: y.dataSync().slice(), grads: grads.map((t) => t.dataSync().slice() as Float32Array) };
      tf.dispose([x, g, b, r, y, ...grads]);
      return out;
    };
    const reference = await run('cpu', (x, g, b) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.maxPool(tf.leakyRelu(tf.batchNorm(x, mean, variance, b, g, epsilon), alpha) as tf.Tensor4D, 2, 2, 'valid');
    });
    const fused = await run('wasm', (x, g, b) => {
      const { y, mean, variance } = batchNormLeakyTraining(x, g, b, epsilon, alpha, true);
      tf.dispose([mean, variance]);
      return y;
    });
    expect(fused.shape).toEqual([4, 4, 20, 8]);
    expect(fused.shape).toEqual(reference.shape);
    expect(errorOfLargest(reference.y, fused.y)).toBeLessThan(1e-5);
    // dx, dγ, dβ
    for (let i = 0; i < 3; i++) expect(errorOfLargest(reference.grads[i]!, fused.grads[i]!)).toBeLessThan(1e-4);
  });
});

describe('the pooled batch norm routes the gradient as the separate pool does', () => {
  it('gives the same gradients, bit for bit, as batch norm and leaky ReLU followed by the 2x2 max pool kernel, near-ties included', async () => {
    const { batchNormLeakyTraining } = await import('../../src/engine/fast-batchnorm.js');
    await initBackend('wasm');
    // Zeros beside values a few ulps of the shift away: the window's activations differ in their
    // last bits only, so that routing by activations recomputed any other way picks other pixels.
    const x = tf.tidy(() => {
      const blobs = tf.mul(tf.randomUniform([8, 16, 16, 32], 0, 1, 'float32', 11), tf.cast(tf.greater(tf.randomUniform([8, 16, 16, 32], 0, 1, 'float32', 12), 0.8), 'float32'));
      const specks = tf.mul(tf.randomUniform([8, 16, 16, 32], -1e-8, 1e-8, 'float32', 13), tf.cast(tf.greater(tf.randomUniform([8, 16, 16, 32], 0, 1, 'float32', 14), 0.5), 'float32'));
      return tf.add(blobs, specks) as tf.Tensor4D;
    });
    const g = tf.randomUniform([32], 0.5, 1.5, 'float32', 15) as tf.Tensor1D;
    const b = tf.randomNormal([32], -0.5, 0.2, 'float32', 16) as tf.Tensor1D;
    const r = tf.randomNormal([8, 8, 8, 32], 0, 1, 'float32', 17);
    const grads = (pooled: boolean) =>
      tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
        const { y, mean, variance } = batchNormLeakyTraining(xi, gi as tf.Tensor1D, bi as tf.Tensor1D, 1e-3, 0.1, pooled);
        tf.dispose([mean, variance]);
        return tf.sum(tf.mul(pooled ? y : tf.maxPool(y as tf.Tensor4D, 2, 2, 'valid'), r));
      })([x, g, b]);
    const fused = grads(true);
    const separate = grads(false);
    for (let i = 0; i < 3; i++) expect(Array.from(fused[i]!.dataSync())).toEqual(Array.from(separate[i]!.dataSync()));
    tf.dispose([x, g, b, r, ...fused, ...separate]);
  });
});

describe('the fast training path', () => {
  it('computes the gradients the stock layers compute on the cpu backend (pooling ties included)', async () => {
    const { buildModel, logitsModel } = await import('../../src/learn/architectures.js');
    const { useFastTraining } = await import('../../src/engine/fast-training.js');
    await initBackend('wasm');
    const run = async (backend: string, fast: boolean) => {
      await tf.setBackend(backend);
      const model = buildModel('pw-tiny-32', { numClasses: 10, seed: 1 });
      const lm = logitsModel(model);
      const restore = fast ? useFastTraining(model) : () => {};
      // Sparse blobs on a zero background: many 2x2 pooling windows hold equal values.
      const x = tf.tidy(() => tf.mul(tf.randomUniform([8, 32, 32, 1], 0, 1, 'float32', 3), tf.cast(tf.greater(tf.randomUniform([8, 32, 32, 1], 0, 1, 'float32', 4), 0.6), 'float32')));
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(lm.apply(x, { training: true }) as tf.Tensor)), 1))) as tf.Scalar, vars);
      const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync().slice() as Float32Array) };
      restore();
      return out;
    };
    const reference = await run('cpu', false);
    const fast = await run('wasm', true);
    expect(fast.loss).toBeCloseTo(reference.loss, 5);
    reference.grads.forEach((g, i) => {
      let num = 0;
      let den = 0;
      g.forEach((v, j) => {
        num += (v - fast.grads[i]![j]!) ** 2;
        den += v * v;
      });
      expect(Math.sqrt(num / (den + 1e-30))).toBeLessThan(1e-4);
    });
  });
});
