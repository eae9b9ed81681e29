import { describe, expect, it } from 'vitest';
import { expandBatch, transformBatch, TTA_TRANSFORMS } from '../../src/classify/tta.js';

// 3x3 image:  1 2 3 / 4 5 6 / 7 8 9
const img = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);

describe('TTA transforms', () => {
  it('rotate and flip as numpy.rot90 / fliplr / flipud do', () => {
    expect(Array.from(transformBatch(img, 3, 'rot90'))).toEqual([3, 6, 9, 2, 5, 8, 1, 4, 7]);
    expect(Array.from(transformBatch(img, 3, 'rot180'))).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(Array.from(transformBatch(img, 3, 'rot270'))).toEqual([7, 4, 1, 8, 5, 2, 9, 6, 3]);
    expect(Array.from(transformBatch(img, 3, 'flipH'))).toEqual([3, 2, 1, 6, 5, 4, 9, 8, 7]);
    expect(Array.from(transformBatch(img, 3, 'flipV'))).toEqual([7, 8, 9, 4, 5, 6, 1, 2, 3]);
  });

  it('compose: four quarter turns are the identity, each flip is its own inverse', () => {
    const x = Float32Array.from({ length: 2 * 16 }, (_, i) => i); // two 4x4 images
    let y = x;
    for (let i = 0; i < 4; i++) y = transformBatch(y, 4, 'rot90');
    expect(Array.from(y)).toEqual(Array.from(x));
    expect(Array.from(transformBatch(transformBatch(x, 4, 'flipH'), 4, 'flipH'))).toEqual(Array.from(x));
    expect(Array.from(transformBatch(transformBatch(x, 4, 'rot90'), 4, 'rot270'))).toEqual(Array.from(x));
  });

  it('expands a batch once per transform, in order', () => {
    const out = expandBatch(img, 3, ['identity', 'flipV']);
    expect(out.length).toBe(18);
    expect(Array.from(out.subarray(0, 9))).toEqual(Array.from(img));
    expect(Array.from(out.subarray(9))).toEqual([7, 8, 9, 4, 5, 6, 1, 2, 3]);
    expect(TTA_TRANSFORMS).toContain('rot270');
  });
});

describe('diagonal turns', () => {
  it('sample the input as a turn about the centre: at 90° exactly the rot90 permutation', async () => {
    const { rotationSampler, permutation } = await import('../../src/classify/tta.js');
    for (const size of [3, 4, 7]) {
      const { index, weight } = rotationSampler(size, 90);
      const perm = permutation('rot90', size);
      for (let i = 0; i < size * size; i++) {
        // one of the four corners carries the whole weight, and it is the permutation's pixel
        let best = 0;
        for (let k = 1; k < 4; k++) if (weight[4 * i + k]! > weight[4 * i + best]!) best = k;
        expect(weight[4 * i + best]!).toBeCloseTo(1, 6);
        expect(index[4 * i + best]).toBe(perm[i]);
      }
    }
  });

  it('turn counter-clockwise: two turns of 45° are a quarter turn inside the image, and the corners take the fill', () => {
    // A smooth 31x31 ramp, so that bilinear resampling is exact (up to rounding) wherever all
    // four neighbours lie inside the image.
    const n = 31;
    const ramp = Float32Array.from({ length: n * n }, (_, i) => 0.2 + 0.01 * (i % n) + 0.02 * Math.floor(i / n));
    const twice = transformBatch(transformBatch(ramp, n, 'rot45', 0), n, 'rot45', 0);
    const quarter = transformBatch(ramp, n, 'rot90');
    const c = (n - 1) / 2;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        if (Math.hypot(x - c, y - c) < c - 2) expect(twice[y * n + x]).toBeCloseTo(quarter[y * n + x]!, 4);
      }
    }
    // a diagonal turn brings background into the corners: the fill value, not the old pixels
    const turned = transformBatch(ramp, n, 'rot45', -1);
    expect(turned[0]).toBe(-1);
    expect(turned[n * n - 1]).toBe(-1);
    expect(turned[((n - 1) / 2) * n + (n - 1) / 2]).toBeCloseTo(ramp[((n - 1) / 2) * n + (n - 1) / 2]!, 6);
    // rot315 is rot45 followed by a quarter turn clockwise (the same resampling, turned)
    const a = transformBatch(transformBatch(ramp, n, 'rot45', 0), n, 'rot270');
    const b = transformBatch(ramp, n, 'rot315', 0);
    for (let i = 0; i < n * n; i++) expect(b[i]).toBeCloseTo(a[i]!, 5);
  });

  it('are the same numbers for evaluation (tensors) as for the daemon (arrays)', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    const learn = await import('../../src/learn/tta.js');
    const x = Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i));
    for (const t of ['rot45', 'rot135', 'rot225', 'rot315', 'rot90', 'flipH'] as const) {
      const viaTensor = learn.transformBatch(tf.tensor4d(x, [2, 8, 8, 1]), t, 0.5).dataSync();
      expect(Array.from(viaTensor)).toEqual(Array.from(transformBatch(x, 8, t, 0.5)));
    }
    expect(learn.isTtaTransform('rot45')).toBe(true);
    expect(learn.isTtaTransform('rot30')).toBe(false);
  });
});
