import { describe, expect, it } from 'vitest';
import { averageTta, hardVote, softVote, voteRows } from '../../src/learn/voting.js';

const f = (...xs: number[]) => new Float32Array(xs);

describe('voting', () => {
  it('soft voting takes the (weighted) mean and its argmax', () => {
    const v = softVote([f(0.6, 0.3, 0.1), f(0.2, 0.7, 0.1)]);
    expect(Array.from(v.probabilities).map((x) => +x.toFixed(6))).toEqual([0.4, 0.5, 0.1]);
    expect(v.label).toBe(1);
    const w = softVote([f(0.6, 0.3, 0.1), f(0.2, 0.7, 0.1)], [3, 1]);
    expect(w.probabilities[0]).toBeCloseTo(0.5, 6);
    expect(w.label).toBe(0);
  });

  it('hard voting follows the majority of top classes even against the mean', () => {
    const probs = [f(0.51, 0.49, 0), f(0.51, 0.49, 0), f(0, 1, 0)];
    expect(softVote(probs).label).toBe(1);
    const v = hardVote(probs);
    expect(v.label).toBe(0);
    expect(v.probabilities[0]).toBeCloseTo(2 / 3, 6);
    expect(v.probabilities[1]).toBeCloseTo(1 / 3, 6);
  });

  it('hard voting breaks ties by the soft-vote probability, then the lower index', () => {
    expect(hardVote([f(0.9, 0.1), f(0.45, 0.55)]).label).toBe(0);
    expect(hardVote([f(0.6, 0.4), f(0.4, 0.6)]).label).toBe(0);
  });

  it('hard voting counts weights', () => {
    expect(hardVote([f(1, 0), f(0, 1), f(0, 1)], [3, 1, 1]).label).toBe(0);
  });

  it('rejects mismatched inputs', () => {
    expect(() => softVote([])).toThrow();
    expect(() => softVote([f(1, 0), f(1)])).toThrow();
    expect(() => hardVote([f(1, 0)], [1, 2])).toThrow();
  });

  it('TTA averaging and row-wise voting', () => {
    expect(Array.from(averageTta([f(1, 0), f(0, 1)]))).toEqual([0.5, 0.5]);
    const rows = voteRows('soft', [f(1, 0, 0, 1), f(0, 1, 0, 1)], 2);
    expect(Array.from(rows)).toEqual([0.5, 0.5, 0, 1]);
  });
});
