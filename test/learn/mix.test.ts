import { describe, expect, it } from 'vitest';
import { DEFAULT_AUGMENT } from '../../src/learn/augment.js';
import { epochBatches, newBatch } from '../../src/learn/batch.js';
import { betaDraw, mixBatch, parseMix, type MixBatch, type MixOptions } from '../../src/learn/mix.js';
import type { TrainConfig, TrainData } from '../../src/learn/trainer.js';
import { mulberry32 } from '../../src/learn/random.js';

/** n images of size² floats, image i filled with the value i + 1; one-hot targets; weights i + 1. */
function batchOf(n: number, size: number, k: number): MixBatch {
  const one = size * size;
  const x = new Float32Array(n * one);
  const targets = new Float32Array(n * k);
  const lossWeights = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x.fill(i + 1, i * one, (i + 1) * one);
    targets[i * k + (i % k)] = 1;
    lossWeights[i] = i + 1;
  }
  return { x, targets, lossWeights, count: n, size, channels: 1, numClasses: k };
}

describe('mixing training images in pairs', () => {
  it('reads --mix with each paper\'s alpha, and names a bad setting', () => {
    expect(parseMix(undefined)).toEqual({ kind: 'none', alpha: 0, probability: 0 });
    expect(parseMix('mixup')).toEqual({ kind: 'mixup', alpha: 0.2, probability: 1 });
    expect(parseMix('cutmix')).toEqual({ kind: 'cutmix', alpha: 1, probability: 1 });
    expect(parseMix('cutmix,alpha=0.5,p=0.25')).toEqual({ kind: 'cutmix', alpha: 0.5, probability: 0.25 });
    expect(() => parseMix('blend')).toThrow(/unknown kind "blend"/);
    expect(() => parseMix('mixup,beta=1')).toThrow(/unknown setting "beta=1"/);
    expect(() => parseMix('mixup,alpha=0')).toThrow(/alpha must be above 0/);
    expect(() => parseMix('cutmix,p=2')).toThrow(/p is a probability/);
  });

  it('draws Beta(a, a) shares with the right mean and variance', () => {
    const rng = mulberry32(7);
    for (const a of [0.2, 1, 3]) {
      const n = 40_000;
      let sum = 0;
      let sq = 0;
      for (let i = 0; i < n; i++) {
        const v = betaDraw(a, a, rng);
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
        sum += v;
        sq += v * v;
      }
      const mean = sum / n;
      const variance = sq / n - mean * mean;
      expect(mean).toBeCloseTo(0.5, 2);
      expect(variance).toBeCloseTo(1 / (4 * (2 * a + 1)), 2);
    }
  });

  it('mixup blends each image with its partner, and its target and weight by the same share', () => {
    const b = batchOf(6, 4, 6);
    const { share, partner } = mixBatch(b, { kind: 'mixup', alpha: 0.4, probability: 1 }, mulberry32(3));
    expect(partner).not.toBeNull();
    expect(share).toBeGreaterThan(0);
    expect(share).toBeLessThan(1);
    // Every image is some image's partner once: a pairing of the batch.
    expect([...partner!].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (let i = 0; i < 6; i++) {
      const p = partner![i]!;
      const expected = share * (i + 1) + (1 - share) * (p + 1);
      for (let q = 0; q < 16; q++) expect(b.x[i * 16 + q]).toBeCloseTo(expected, 5);
      const row = Array.from(b.targets.subarray(i * 6, i * 6 + 6));
      expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
      if (p !== i) {
        expect(row[i]).toBeCloseTo(share, 6);
        expect(row[p]).toBeCloseTo(1 - share, 6);
      }
      expect(b.lossWeights[i]).toBeCloseTo(expected, 5);
    }
  });

  it('CutMix pastes one box of the partner, and the target shares are the box\'s area', () => {
    const size = 20;
    let boxes = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const b = batchOf(4, size, 4);
      const { share, partner } = mixBatch(b, { kind: 'cutmix', alpha: 1, probability: 1 }, mulberry32(seed));
      for (let i = 0; i < 4; i++) {
        const p = partner![i]!;
        if (p === i) continue;
        const img = b.x.subarray(i * size * size, (i + 1) * size * size);
        const own = img.filter((v) => v === i + 1).length;
        const pasted = img.filter((v) => v === p + 1).length;
        expect(own + pasted).toBe(size * size);
        expect(own / (size * size)).toBeCloseTo(share, 6);
        expect(b.targets[i * 4 + (i % 4)]).toBeCloseTo(share, 6);
        expect(b.targets[i * 4 + (p % 4)]).toBeCloseTo(1 - share, 6);
        if (pasted > 0) {
          boxes++;
          // The pasted pixels form one rectangle.
          let x1 = size, x2 = -1, y1 = size, y2 = -1;
          for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (img[y * size + x] === p + 1) {
            x1 = Math.min(x1, x); x2 = Math.max(x2, x); y1 = Math.min(y1, y); y2 = Math.max(y2, y);
          }
          expect((x2 - x1 + 1) * (y2 - y1 + 1)).toBe(pasted);
        }
      }
    }
    expect(boxes).toBeGreaterThan(20);
  });

  it('leaves the batch alone when not mixing, or when the batch\'s draw says no', () => {
    for (const options of [{ kind: 'none' as const, alpha: 1, probability: 1 }, { kind: 'mixup' as const, alpha: 1, probability: 0 }]) {
      const b = batchOf(4, 3, 4);
      const before = { x: b.x.slice(), t: b.targets.slice(), w: b.lossWeights.slice() };
      expect(mixBatch(b, options, mulberry32(1))).toEqual({ share: 1, partner: null });
      expect(b.x).toEqual(before.x);
      expect(b.targets).toEqual(before.t);
      expect(b.lossWeights).toEqual(before.w);
    }
  });

  it('mixes the batch the trainers would draw without mixing, image by image', () => {
    const size = 12;
    const n = 40;
    const pixels = new Uint8Array(n * size * size);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + (i >> 7) * 11) % 256;
    const labels = Int32Array.from({ length: n }, (_, i) => i % 5);
    const data: TrainData = { train: { table: { size, pixels, rels: new Array<string>(n).fill('') }, labels }, validation: null, numClasses: 5 };
    const config = (mix?: MixOptions): TrainConfig => ({
      epochs: 1, batchSize: 8, learningRate: 1e-3, finalLearningRateFraction: 1, weightDecay: 0, seed: 5, classWeights: 'none',
      augment: DEFAULT_AUGMENT, patience: 0, maxMinutes: 0, fill: 1, ...(mix ? { mix } : {}),
    });
    const weights = new Float32Array(5).fill(1);
    const plain = epochBatches(data, config(), weights, 2);
    const mixed = epochBatches(data, config(parseMix('mixup,alpha=1')), weights, 2);
    const one = size * size;
    for (let b = 0; b < 3; b++) {
      const p = newBatch(8, one, 5);
      const m = newBatch(8, one, 5);
      plain.fill(b, p);
      const { share, partner } = mixed.fill(b, m);
      expect(m.labels).toEqual(p.labels);
      expect(m.picked).toEqual(p.picked);
      for (let i = 0; i < 8; i++) {
        const q = partner![i]!;
        for (let k = 0; k < one; k += 17) expect(m.x[i * one + k]).toBeCloseTo(share * p.x[i * one + k]! + (1 - share) * p.x[q * one + k]!, 5);
        for (let c = 0; c < 5; c++) expect(m.targets[i * 5 + c]).toBeCloseTo(share * p.targets[i * 5 + c]! + (1 - share) * p.targets[q * 5 + c]!, 6);
      }
    }
  });
});
