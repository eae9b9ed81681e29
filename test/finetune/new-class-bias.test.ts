// The new class's bias is set against each old class's replay images apart: the gate bounds the
// recall each old class loses, so a new class may not take its look-alikes from one class even
// when they are a small share of all the replay images.
import { describe, expect, it } from 'vitest';
import { newClassShifts } from '../../src/finetune/head.js';

/** Rows of [old A, old B, new] probabilities; `claims` rows of class A lean to the new class. */
function replay(perClass: number, claimsFromA: number): { probs: Float32Array; classes: Int32Array } {
  const probs: number[] = [];
  const classes: number[] = [];
  for (const cls of [0, 1]) {
    for (let i = 0; i < perClass; i++) {
      const claimed = cls === 0 && i < claimsFromA;
      // A claimed row gives the new class a margin of 1 + i/10 over its best old class; others -3.
      const own = 0.6;
      const nw = claimed ? own * Math.exp(1 + i / 10) : own * Math.exp(-3 - i / 100);
      probs.push(cls === 0 ? own : 0.1, cls === 1 ? own : 0.1, nw);
      classes.push(cls);
    }
  }
  return { probs: Float32Array.from(probs), classes: Int32Array.from(classes) };
}

function claimed(probs: Float32Array, classes: Int32Array, shift: number, cls: number): number {
  let n = 0;
  for (let r = 0; r < classes.length; r++) {
    if (classes[r] !== cls) continue;
    const best = Math.max(probs[r * 3]!, probs[r * 3 + 1]!);
    if (Math.log(probs[r * 3 + 2]!) - shift > Math.log(best)) n++;
  }
  return n;
}

describe('newClassShifts', () => {
  it('bounds what the new class claims of each old class, not of all of them together', () => {
    const { probs, classes } = replay(100, 3);
    const [shift] = newClassShifts(probs, 3, 2, 0.01, classes);
    // 1% of class A's 100 images: one, although 2 of all 200 would be 1% of the whole.
    expect(claimed(probs, classes, shift!, 0)).toBe(1);
    expect(claimed(probs, classes, shift!, 1)).toBe(0);
    expect(shift).toBeGreaterThan(1.1);
    expect(shift).toBeLessThan(1.2 + 1e-2);
  });

  it('raises a shy new class (a negative shift) up to the share allowed', () => {
    const { probs, classes } = replay(100, 0);
    const [shift] = newClassShifts(probs, 3, 2, 0.01, classes);
    expect(shift).toBeLessThan(0);
    expect(claimed(probs, classes, shift!, 0) + claimed(probs, classes, shift!, 1)).toBeLessThanOrEqual(2);
    expect(claimed(probs, classes, shift!, 0)).toBeLessThanOrEqual(1);
    expect(claimed(probs, classes, shift!, 1)).toBeLessThanOrEqual(1);
  });
});
