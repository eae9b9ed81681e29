// Temperature scaling of the vote: the live rule (classify/voting.ts) and the fit with its fair,
// cross-fitted estimate (learn/calibration.ts).
import { describe, expect, it } from 'vitest';
import { applyTemperature, argmax, vote } from '../../src/classify/voting.js';
import { calibrate, fitTemperature, temperedLogLoss } from '../../src/learn/calibration.js';
import { logLoss } from '../../src/learn/metrics.js';
import { mulberry32 } from '../../src/learn/random.js';

/**
 * n rows of k classes from a known, calibrated model whose logits were then multiplied by
 * `overconfidence` (1: calibrated, the fitted temperature should come out near it).
 */
function synthetic(n: number, k: number, overconfidence: number, seed = 3): { rows: Float32Array; labels: Int32Array } {
  const rng = mulberry32(seed);
  const rows = new Float32Array(n * k);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const logits = Array.from({ length: k }, () => 1.5 * gaussian(rng));
    const top = Math.max(...logits);
    const p = logits.map((l) => Math.exp(l - top));
    const sum = p.reduce((a, b) => a + b, 0);
    // The label is drawn from the calibrated distribution.
    let u = rng() * sum;
    let label = 0;
    while (label < k - 1 && u > p[label]!) u -= p[label++]!;
    labels[r] = label;
    const sharp = logits.map((l) => Math.exp(overconfidence * (l - top)));
    const s2 = sharp.reduce((a, b) => a + b, 0);
    sharp.forEach((v, c) => (rows[r * k + c] = v / s2));
  }
  return { rows, labels };
}

function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(rng() + 1e-12)) * Math.cos(2 * Math.PI * rng());
}

describe('applyTemperature', () => {
  it('keeps the winner and the order, softens above 1, sharpens below, and is the identity at 1', () => {
    const p = Float32Array.from([0.7, 0.2, 0.1]);
    expect(Array.from(applyTemperature(Float32Array.from(p), 1))).toEqual(Array.from(p));
    const soft = applyTemperature(Float32Array.from(p), 2);
    const sharp = applyTemperature(Float32Array.from(p), 0.5);
    expect(argmax(soft)).toBe(0);
    expect(soft[0]!).toBeLessThan(0.7);
    expect(sharp[0]!).toBeGreaterThan(0.7);
    // p^(1/2) renormalised, exactly.
    const r = [Math.sqrt(0.7), Math.sqrt(0.2), Math.sqrt(0.1)];
    const s = r[0]! + r[1]! + r[2]!;
    expect(soft[0]!).toBeCloseTo(r[0]! / s, 6);
    expect(soft.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });

  it('is what the live vote applies: a geometric vote at T equals its pooled logs divided by T', () => {
    const a = Float32Array.from([0.6, 0.3, 0.1]);
    const b = Float32Array.from([0.5, 0.1, 0.4]);
    const plain = vote('geometric', [a, b]).distribution;
    const tempered = vote('geometric', [a, b], undefined, 1.5).distribution;
    const logs = [0, 1, 2].map((c) => (0.5 * (Math.log(a[c]!) + Math.log(b[c]!))) / 1.5);
    const z = logs.map(Math.exp).reduce((x, y) => x + y, 0);
    logs.forEach((l, c) => expect(tempered[c]!).toBeCloseTo(Math.exp(l) / z, 6));
    expect(argmax(tempered)).toBe(argmax(plain));
  });
});

describe('fitTemperature and calibrate', () => {
  it('finds the temperature that undoes a known over-confidence and lowers the log-loss fairly', () => {
    const { rows, labels } = synthetic(4000, 10, 2);
    const t = fitTemperature(rows, labels, 10);
    expect(t).toBeGreaterThan(1.8);
    expect(t).toBeLessThan(2.2);
    const c = calibrate(rows, labels, 10);
    expect(c.logLossBefore).toBeCloseTo(logLoss(rows, labels, 10), 6);
    expect(c.logLossInSample).toBeLessThan(c.logLossBefore - 0.05);
    // Fitted on one half, scored on the other: a little worse than in-sample, still far better than none.
    expect(c.logLossCrossFitted).toBeGreaterThanOrEqual(c.logLossInSample - 1e-9);
    expect(c.logLossCrossFitted).toBeLessThan(c.logLossBefore - 0.05);
    expect(c.halvings).toBe(4);
  });

  it('leaves a calibrated vote near T = 1, and sharpens a timid one', () => {
    const calibrated = synthetic(4000, 10, 1, 5);
    expect(Math.abs(fitTemperature(calibrated.rows, calibrated.labels, 10) - 1)).toBeLessThan(0.1);
    const timid = synthetic(4000, 10, 0.5, 6);
    expect(fitTemperature(timid.rows, timid.labels, 10)).toBeLessThan(0.6);
    expect(temperedLogLoss(timid.rows, timid.labels, 10, 0.5)).toBeLessThan(temperedLogLoss(timid.rows, timid.labels, 10, 1));
  });
});
