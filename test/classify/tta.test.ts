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
