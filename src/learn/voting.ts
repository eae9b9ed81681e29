// Ensemble voting and test-time augmentation for `plankwatch evaluate`: the live classify stage's
// rules (src/classify/voting.ts), shaped as rows that the metrics score.
//
// softVote: the weighted mean of the members' probability vectors; label = its argmax.
// geometricVote: the normalised weighted geometric mean of the vectors; label = its argmax.
// hardVote: each member casts its weight for its own top class; probabilities = each class's
//   share of the votes; ties between classes with equal votes go to the class with the higher
//   soft-vote probability, then to the lower index.
// averageTta: the mean of one member's probability vectors over test-time transforms.

import type { VotingRule } from '../classify/meta.js';
import { applyTemperature, argmax as liveArgmax, geometricVote as liveGeometricVote, hardVote as liveHardVote, softVote as liveSoftVote } from '../classify/voting.js';

export interface Vote {
  /** One probability per class (sums to 1). */
  probabilities: Float32Array;
  /** Index of the winning class. */
  label: number;
}

/** Index of the largest value (the first one on an exact tie). */
export const argmax = liveArgmax;

/** Soft voting as the live classifier does it: the weighted mean and its argmax. */
export function softVote(probs: Float32Array[], weights?: number[]): Vote {
  const v = liveSoftVote(probs, weights);
  return { probabilities: v.distribution, label: v.index };
}

/** Geometric voting as the live classifier does it: the normalised weighted geometric mean and its argmax. */
export function geometricVote(probs: Float32Array[], weights?: number[]): Vote {
  const v = liveGeometricVote(probs, weights);
  return { probabilities: v.distribution, label: v.index };
}

/**
 * Hard voting as the live classifier does it (majority of the members' top classes, ties broken by
 * the mean probability). For evaluation the row is the classes' vote shares, so that its argmax is
 * the vote's winner.
 */
export function hardVote(probs: Float32Array[], weights?: number[]): Vote {
  const v = liveHardVote(probs, weights);
  return { probabilities: v.votes, label: v.index };
}

/** Mean of one member's probability vectors over test-time transforms. */
export function averageTta(probs: Float32Array[]): Float32Array {
  return softVote(probs).probabilities;
}

/** Apply a voting rule to rows: probs[m] holds n rows of k classes for member m. */
export function voteRows(rule: VotingRule, probs: Float32Array[], k: number, weights?: number[], temperature = 1): Float32Array {
  const apply = rule === 'hard' ? hardVote : rule === 'geometric' ? geometricVote : softVote;
  const n = probs[0]!.length / k;
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    const rows = probs.map((p) => p.subarray(r * k, (r + 1) * k));
    out.set(applyTemperature(apply(rows, weights).probabilities, temperature), r * k);
  }
  return out;
}
