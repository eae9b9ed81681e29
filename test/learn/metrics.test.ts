import { describe, expect, it } from 'vitest';
import { computeMetrics, logLoss } from '../../src/learn/metrics.js';

// Three classes, four images; values worked out by hand below.
const probs = new Float32Array([
  0.7, 0.2, 0.1, // true 0, predicted 0
  0.1, 0.6, 0.3, // true 1, predicted 1
  0.5, 0.4, 0.1, // true 1, predicted 0
  0.2, 0.3, 0.5, // true 2, predicted 2
]);
const labels = new Int32Array([0, 1, 1, 2]);

describe('metrics', () => {
  it('top-1, top-k and log-loss match hand computation', () => {
    const m = computeMetrics(probs, labels, 3);
    expect(m.top1).toBeCloseTo(3 / 4, 10);
    expect(m.top5).toBe(1);
    const expected = -(Math.log(0.7) + Math.log(0.6) + Math.log(0.4) + Math.log(0.5)) / 4;
    expect(m.logLoss).toBeCloseTo(expected, 6);
  });

  it('precision, recall, macro-F1 and the confusion matrix', () => {
    const m = computeMetrics(probs, labels, 3);
    expect(m.confusion).toEqual([
      [1, 0, 0],
      [1, 1, 0],
      [0, 0, 1],
    ]);
    // class 0: P = 1/2, R = 1; class 1: P = 1, R = 1/2; class 2: P = R = 1.
    expect(m.perClass[0]).toMatchObject({ precision: 0.5, recall: 1, support: 1 });
    expect(m.perClass[1]).toMatchObject({ precision: 1, recall: 0.5, support: 2 });
    expect(m.perClass[0]!.f1).toBeCloseTo(2 / 3, 10);
    expect(m.macroF1).toBeCloseTo((2 / 3 + 2 / 3 + 1) / 3, 10);
  });

  it('log-loss clips zero probabilities and renormalises rows as the competition did', () => {
    const p = new Float32Array([0, 1, 0, 2]); // second row sums to 2: renormalised to 0 / 1
    expect(logLoss(p, new Int32Array([0, 1]), 2)).toBeCloseTo((-Math.log(1e-15) - Math.log(1)) / 2, 3);
  });
});
