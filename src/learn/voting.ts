// Ensemble voting and test-time augmentation over probability vectors: pure, typed functions that
// the live classify stage and `plankwatch evaluate` share.
//
// softVote: the weighted mean of the members' probability vectors; label = its argmax.
// hardVote: each member casts its weight for its own top class; probabilities = each class's
//   share of the votes; ties between classes with equal votes go to the class with the higher
//   soft-vote probability, then to the lower index.
// averageTta: the mean of one member's probability vectors over test-time transforms.

export interface Vote {
  /** One probability per class (sums to 1). */
  probabilities: Float32Array;
  /** Index of the winning class. */
  label: number;
}

function checkInputs(probs: Float32Array[], weights?: number[]): number {
  if (probs.length === 0) throw new Error('Voting needs at least one probability vector.');
  const k = probs[0]!.length;
  for (const p of probs) if (p.length !== k) throw new Error('All probability vectors must have the same length.');
  if (weights && weights.length !== probs.length) throw new Error('One weight per member is required.');
  if (weights && weights.some((w) => !(w >= 0))) throw new Error('Weights must be non-negative numbers.');
  return k;
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

export function softVote(probs: Float32Array[], weights?: number[]): Vote {
  const k = checkInputs(probs, weights);
  const out = new Float32Array(k);
  let total = 0;
  probs.forEach((p, m) => {
    const w = weights?.[m] ?? 1;
    total += w;
    for (let c = 0; c < k; c++) out[c] = out[c]! + w * p[c]!;
  });
  if (total > 0) for (let c = 0; c < k; c++) out[c] = out[c]! / total;
  return { probabilities: out, label: argmax(out) };
}

export function hardVote(probs: Float32Array[], weights?: number[]): Vote {
  const k = checkInputs(probs, weights);
  const votes = new Float32Array(k);
  let total = 0;
  probs.forEach((p, m) => {
    const w = weights?.[m] ?? 1;
    votes[argmax(p)] = votes[argmax(p)]! + w;
    total += w;
  });
  const soft = softVote(probs, weights).probabilities;
  let label = 0;
  for (let c = 1; c < k; c++) {
    if (votes[c]! > votes[label]! || (votes[c] === votes[label] && soft[c]! > soft[label]!)) label = c;
  }
  if (total > 0) for (let c = 0; c < k; c++) votes[c] = votes[c]! / total;
  return { probabilities: votes, label };
}

/** Mean of one member's probability vectors over test-time transforms. */
export function averageTta(probs: Float32Array[]): Float32Array {
  return softVote(probs).probabilities;
}

/** Apply a voting rule to rows: probs[m] holds n rows of k classes for member m. */
export function voteRows(rule: 'soft' | 'hard', probs: Float32Array[], k: number, weights?: number[]): Float32Array {
  const n = probs[0]!.length / k;
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    const rows = probs.map((p) => p.subarray(r * k, (r + 1) * k));
    out.set((rule === 'soft' ? softVote(rows, weights) : hardVote(rows, weights)).probabilities, r * k);
  }
  return out;
}
