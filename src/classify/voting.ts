// Pure voting rules over member probability vectors that are already aligned to one class list:
// soft (the weighted mean), geometric (the normalised weighted geometric mean) and hard (the
// members' top classes, weighted).
// No tensors here: the classifier votes on the main thread after the workers return probabilities.

import type { VotingRule } from './meta.js';

export interface Vote {
  /** Index of the winning class. */
  index: number;
  /**
   * The ensemble's probability distribution: the (weighted) mean of the members' vectors, or for
   * the geometric rule their normalised weighted geometric mean.
   */
  distribution: Float32Array;
}

export interface HardVote extends Vote {
  /** Weighted vote share of each class (sums to 1). */
  votes: Float32Array;
}

/** Weighted mean of the members' probability vectors (weights default to 1, normalised to sum 1). */
export function meanProbabilities(probs: Float32Array[], weights?: number[]): Float32Array {
  checkShapes(probs, weights);
  const w = normalisedWeights(probs.length, weights);
  const mean = new Float32Array(probs[0]!.length);
  for (let m = 0; m < probs.length; m++) {
    const p = probs[m]!;
    const wm = w[m]!;
    for (let c = 0; c < mean.length; c++) mean[c] += wm * p[c]!;
  }
  return mean;
}

/** Soft voting: the class with the highest weighted mean probability (first index on an exact tie). */
export function softVote(probs: Float32Array[], weights?: number[]): Vote {
  const distribution = meanProbabilities(probs, weights);
  return { index: argmax(distribution), distribution };
}

/**
 * The members' probabilities pooled log-linearly: exp(Σ w·log p), normalised to sum 1 (each
 * probability floored at GEOMETRIC_FLOOR, so that one member's zero cannot veto a class). A class
 * needs every member's support: confident disagreements cancel rather than average, which on
 * plankton scores a lower log-loss than the mean.
 */
export function geometricMean(probs: Float32Array[], weights?: number[]): Float32Array {
  checkShapes(probs, weights);
  const w = normalisedWeights(probs.length, weights);
  const logs = new Float64Array(probs[0]!.length);
  for (let m = 0; m < probs.length; m++) {
    const p = probs[m]!;
    const wm = w[m]!;
    if (wm === 0) continue;
    for (let c = 0; c < logs.length; c++) logs[c] += wm * Math.log(Math.max(p[c]!, GEOMETRIC_FLOOR));
  }
  const out = new Float32Array(logs.length);
  normalisedExp(logs, out);
  return out;
}

/**
 * exp of `count` logarithms from `values[from]`, rescaled to sum 1, written to `out` at the same
 * place (`out` may be `values`): the last step of the geometric rule, shared with the ensemble
 * search, which pools many sets' precomputed logarithms row by row.
 */
export function normalisedExp(values: ArrayLike<number>, out: Float32Array, from = 0, count = out.length - from): void {
  let top = -Infinity;
  for (let c = from; c < from + count; c++) if (values[c]! > top) top = values[c]!;
  let sum = 0;
  for (let c = from; c < from + count; c++) {
    const e = Math.exp(values[c]! - top);
    out[c] = e;
    sum += e;
  }
  for (let c = from; c < from + count; c++) out[c] = out[c]! / sum;
}

/** Geometric voting: the class with the highest normalised weighted geometric mean probability. */
export function geometricVote(probs: Float32Array[], weights?: number[]): Vote {
  const distribution = geometricMean(probs, weights);
  return { index: argmax(distribution), distribution };
}

/**
 * The ensemble file's rule applied to the members' aligned vectors, its distribution then scaled
 * by the file's `temperature` (1: as voted). The winner does not change.
 */
export function vote(rule: VotingRule, probs: Float32Array[], weights?: number[], temperature = 1): Vote {
  const v = rule === 'hard' ? hardVote(probs, weights) : rule === 'geometric' ? geometricVote(probs, weights) : softVote(probs, weights);
  applyTemperature(v.distribution, temperature);
  return v;
}

/**
 * Temperature scaling, in place: each probability's logarithm divided by `temperature`, the row
 * renormalised to sum 1 (p^(1/T) / sum p^(1/T); for the geometric vote exactly the pooled
 * log-probabilities divided by T). T > 1 softens, T < 1 sharpens; the order of classes is kept.
 */
export function applyTemperature(distribution: Float32Array, temperature: number): Float32Array {
  if (temperature === 1) return distribution;
  const logs = new Float64Array(distribution.length);
  for (let c = 0; c < logs.length; c++) logs[c] = Math.log(Math.max(distribution[c]!, GEOMETRIC_FLOOR)) / temperature;
  normalisedExp(logs, distribution);
  return distribution;
}

/**
 * Hard voting: each member votes for its top class with its weight; the class with the most votes
 * wins, ties broken by the highest weighted mean probability.
 */
export function hardVote(probs: Float32Array[], weights?: number[]): HardVote {
  const distribution = meanProbabilities(probs, weights);
  const w = normalisedWeights(probs.length, weights);
  const votes = new Float32Array(distribution.length);
  for (let m = 0; m < probs.length; m++) votes[argmax(probs[m]!)] += w[m]!;
  let index = 0;
  for (let c = 1; c < votes.length; c++) {
    const better = votes[c]! > votes[index]! + EPSILON;
    const tie = Math.abs(votes[c]! - votes[index]!) <= EPSILON;
    if (better || (tie && distribution[c]! > distribution[index]!)) index = c;
  }
  return { index, distribution, votes };
}

/** Index of the largest value (the first one on an exact tie). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** The smallest probability the geometric rule takes the logarithm of. */
export const GEOMETRIC_FLOOR = 1e-10;

/** Vote shares computed from float weights can differ in the last bits; closer than this is a tie. */
const EPSILON = 1e-6;

function normalisedWeights(count: number, weights?: number[]): number[] {
  const raw = weights ?? new Array<number>(count).fill(1);
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((x) => x / sum);
}

function checkShapes(probs: Float32Array[], weights?: number[]): void {
  if (probs.length === 0) throw new RangeError('voting needs at least one member');
  const n = probs[0]!.length;
  if (n === 0) throw new RangeError('voting needs at least one class');
  if (probs.some((p) => p.length !== n)) throw new RangeError('members\' probability vectors differ in length; align them first');
  if (weights) {
    if (weights.length !== probs.length) throw new RangeError(`${weights.length} weights for ${probs.length} members`);
    if (weights.some((x) => !(Number.isFinite(x) && x >= 0)) || weights.every((x) => x === 0)) {
      throw new RangeError('weights must be finite, non-negative and not all zero');
    }
  }
}
