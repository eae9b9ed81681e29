// From the members' probabilities for one frame to an EnsemblePrediction: align classes, vote,
// and measure uncertainty.
import type { ClassProb, EnsemblePrediction, MemberPrediction } from '../types.js';
import { toUnion } from './classes.js';
import type { LoadedEnsemble } from './ensemble-loader.js';
import { argmax, vote as applyRule } from './voting.js';

/**
 * `memberProbs[m]` holds member m's probabilities in its own class order.
 *
 * The ensemble distribution is the weighted mean of the aligned member vectors (soft and hard
 * voting) or their normalised weighted geometric mean (geometric voting). Soft and geometric voting
 * label its argmax; hard voting labels the majority of the members' top classes (ties broken by
 * the mean). probability = the distribution's value for the label; margin = probability minus the
 * best other class's, 0 when hard voting chose a class that is not the mean's first;
 * disagreement = fraction of members whose own top class is not the label.
 */
export function ensemblePrediction(ensemble: LoadedEnsemble, memberProbs: ArrayLike<number>[], topK: number): EnsemblePrediction {
  const { classes, classMaps, members } = ensemble;
  const aligned = memberProbs.map((p, m) => toUnion(p, classMaps[m]!, classes.length));
  const weights = members.map((m) => m.weight);
  const vote = applyRule(ensemble.file.voting, aligned, weights, ensemble.file.temperature ?? 1);
  const dist = vote.distribution;
  const label = vote.index;

  let second = 0;
  for (let c = 0; c < dist.length; c++) if (c !== label && dist[c]! > second) second = dist[c]!;
  const probability = dist[label]!;
  const disagreeing = aligned.filter((p) => argmax(p) !== label).length;

  const order = rank(dist).filter((c) => c !== label);
  const ensembleTop = [label, ...order].slice(0, topK).map((c) => ({ label: classes[c]!, probability: dist[c]! }));

  return {
    label: classes[label]!,
    probability,
    margin: Math.max(0, probability - second),
    disagreement: disagreeing / members.length,
    topK: ensembleTop,
    members: members.map(
      (m, i): MemberPrediction => ({ member: m.name, version: m.version, topK: topOf(memberProbs[i]!, m.meta.classes, topK) }),
    ),
    ensembleVersion: ensemble.file.version,
  };
}

function topOf(probs: ArrayLike<number>, labels: string[], k: number): ClassProb[] {
  return rank(probs)
    .slice(0, k)
    .map((c) => ({ label: labels[c]!, probability: probs[c]! }));
}

/** Class indices by decreasing probability (stable: lower index first on ties). */
function rank(probs: ArrayLike<number>): number[] {
  return Array.from({ length: probs.length }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
}
