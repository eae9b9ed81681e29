// `plankwatch evaluate --budget M`: the best ensembles that the daemon can afford. Every set of
// up to four candidate members, each with one view (the image, or with `diagonalViews` its 45°
// turn) or two (the image and its quarter turn or mirror image, or its 45° turn, as a member's own
// "tta" in ensemble.json gives it), whose multiply-adds per ROI fit the budget, scored by the
// soft vote (or the geometric one) on the held-out images; ranked by top-1 and by log-loss.
//
// The best of hundreds of sets, chosen on the images it is scored on, looks better than it will do
// on new images. The fair estimate says by how much: the best set is chosen on a random half of
// the images and scored on the other half, both ways, over a few seeded halvings.
import { GEOMETRIC_FLOOR, meanProbabilities, normalisedExp } from '../classify/voting.js';
import { argmaxRow, rowLogLoss } from './metrics.js';
import { deriveSeed, mulberry32, shuffleInPlace } from './random.js';
import type { TtaTransform } from './tta.js';

/**
 * The views a member may get in a searched set: the image alone, or with a second view: its
 * quarter turn, or for a network invariant to quarter turns (pw-p4), its mirror image. With
 * `diagonalViews`, also its 45° turn alone and the image with its 45° turn (a network trained on
 * rotations at every angle sees a turned, resampled image as it saw its training images).
 */
export function searchViews(candidate: { secondView?: TtaTransform; diagonalViews?: boolean }): TtaTransform[][] {
  const views: TtaTransform[][] = [['identity'], ['identity', candidate.secondView ?? 'rot90']];
  if (candidate.diagonalViews) views.push(['rot45'], ['identity', 'rot45']);
  return views;
}

export interface SearchCandidate {
  name: string;
  version: string;
  /** Multiply-adds of one forward pass. */
  macs: number;
  /** The second view searched (default rot90). */
  secondView?: TtaTransform;
  /** Search the 45° turn too (see searchViews). */
  diagonalViews?: boolean;
  /** Held-out probabilities (n rows of k) for each transform of searchViews(). */
  probs: Map<TtaTransform, Float32Array>;
}

export interface EnsembleChoice {
  /** In ensemble-file form: a member with other views than the image alone carries them as its own "tta". */
  members: { name: string; version: string; tta?: TtaTransform[] }[];
  /** Multiply-adds per ROI, all members and views together. */
  macs: number;
  top1: number;
  logLoss: number;
}

/** Random halvings the fair estimate uses (each both ways). */
export const FAIR_HALVINGS = 4;

/** What the best set can be expected to score on images it was not chosen on. */
export interface FairEstimate {
  /** Seeded random halvings of the images, each used both ways. */
  halvings: number;
  /** Mean top-1, on the other half, of the set with the best top-1 on one half. */
  top1: number;
  /** Mean log-loss, on the other half, of the set with the best log-loss on one half. */
  logLoss: number;
}

export interface SearchResult {
  /** Every affordable set, unsorted (`rankChoices` orders them). */
  choices: EnsembleChoice[];
  /** Null when asked for no halvings or with fewer than two images. */
  fair: FairEstimate | null;
}

/** `count` seeded masks over n rows, each marking exactly ⌊n/2⌋ of them (1: the first half). */
export function randomHalvings(n: number, count: number, seed = 1): Uint8Array[] {
  return Array.from({ length: count }, (_, h) => {
    const mask = new Uint8Array(n);
    const rows = shuffleInPlace(Array.from({ length: n }, (_, r) => r), mulberry32(deriveSeed(seed, 'halving', h)));
    for (const r of rows.slice(0, Math.floor(n / 2))) mask[r] = 1;
    return mask;
  });
}

/** Correct answers and log-loss summed over each half of each halving: [h][0: first half, 1: second]. */
interface HalfSums {
  correct: number[][];
  loss: number[][];
}

/**
 * For each halving and direction, the set that is best on the choosing half, scored on the other
 * half; the means of those scores. Ties in top-1 go to the lower log-loss on the choosing half.
 */
function fairEstimate(halves: HalfSums[], masks: Uint8Array[]): FairEstimate {
  const n = masks[0]!.length;
  let top1 = 0;
  let loss = 0;
  masks.forEach((mask, h) => {
    const first = mask.reduce((a, v) => a + v, 0);
    const size = [first, n - first];
    for (const [pick, score] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const hitsOnPick = (s: HalfSums) => s.correct[h]![pick]!;
      const lossOnPick = (s: HalfSums) => s.loss[h]![pick]!;
      let byTop1 = halves[0]!;
      let byLoss = halves[0]!;
      for (const s of halves) {
        if (hitsOnPick(s) > hitsOnPick(byTop1) || (hitsOnPick(s) === hitsOnPick(byTop1) && lossOnPick(s) < lossOnPick(byTop1))) byTop1 = s;
        if (lossOnPick(s) < lossOnPick(byLoss)) byLoss = s;
      }
      top1 += byTop1.correct[h]![score]! / size[score]!;
      loss += byLoss.loss[h]![score]! / size[score]!;
    }
  });
  const runs = 2 * masks.length;
  return { halvings: masks.length, top1: top1 / runs, logLoss: loss / runs };
}

/** The rules a searched set can vote by (hard voting has no probabilities worth a log-loss). */
export type SearchRule = 'soft' | 'geometric';

/**
 * Rows pooled as the live geometric vote pools them, from each member's floored logarithms: the
 * mean logarithm, exponentiated and normalised per row.
 */
function geometricRows(logs: Float32Array[], n: number, k: number): Float32Array {
  const out = new Float32Array(n * k);
  for (let i = 0; i < out.length; i++) {
    let v = 0;
    for (const l of logs) v += l[i]!;
    out[i] = v / logs.length;
  }
  for (let r = 0; r < n; r++) normalisedExp(out, out, r * k, k);
  return out;
}

/**
 * Score every affordable set (by `rule`, equal weights, each member's views averaged first), and
 * with `halvings` > 0 the fair estimate of the best one.
 */
export function searchEnsembles(
  candidates: SearchCandidate[],
  labels: Int32Array,
  k: number,
  budgetMacs: number,
  { maxMembers = 4, halvings = FAIR_HALVINGS, rule = 'soft' as SearchRule } = {},
): SearchResult {
  const n = labels.length;
  const masks = n >= 2 ? randomHalvings(n, halvings) : [];
  // Each candidate with each view option, averaged once.
  const options = candidates.map((c) =>
    searchViews(c).map((views) => {
      const rows = views.map((t) => {
        const p = c.probs.get(t);
        if (!p || p.length !== n * k) throw new Error(`${c.name}/${c.version}: no held-out probabilities for the ${t} view`);
        return p;
      });
      const mean = meanProbabilities(rows);
      const logs = rule === 'geometric' ? Float32Array.from(mean, (p) => Math.log(Math.max(p, GEOMETRIC_FLOOR))) : null;
      return { views, mean, logs, macs: c.macs * views.length };
    }),
  );
  const out: EnsembleChoice[] = [];
  const halves: HalfSums[] = [];
  const visit = (start: number, chosen: { c: number; o: number }[], macs: number) => {
    if (chosen.length > 0) {
      const picked = chosen.map(({ c, o }) => options[c]![o]!);
      const vote = rule === 'geometric' ? geometricRows(picked.map((p) => p.logs!), n, k) : meanProbabilities(picked.map((p) => p.mean));
      let correct = 0;
      let loss = 0;
      const sums: HalfSums = { correct: masks.map(() => [0, 0]), loss: masks.map(() => [0, 0]) };
      for (let r = 0; r < n; r++) {
        const right = argmaxRow(vote, r, k) === labels[r] ? 1 : 0;
        const term = rowLogLoss(vote, r, k, labels[r]!);
        correct += right;
        loss += term;
        for (let h = 0; h < masks.length; h++) {
          const half = masks[h]![r] ? 0 : 1;
          sums.correct[h]![half]! += right;
          sums.loss[h]![half]! += term;
        }
      }
      halves.push(sums);
      out.push({
        members: chosen.map(({ c, o }) => {
          const m = candidates[c]!;
          const views = options[c]![o]!.views;
          return views.length === 1 && views[0] === 'identity' ? { name: m.name, version: m.version } : { name: m.name, version: m.version, tta: [...views] };
        }),
        macs,
        top1: correct / n,
        logLoss: loss / n,
      });
    }
    if (chosen.length === maxMembers) return;
    for (let c = start; c < candidates.length; c++) {
      options[c]!.forEach((opt, o) => {
        if (macs + opt.macs <= budgetMacs) visit(c + 1, [...chosen, { c, o }], macs + opt.macs);
      });
    }
  };
  visit(0, [], 0);
  return { choices: out, fair: masks.length > 0 && out.length > 0 ? fairEstimate(halves, masks) : null };
}

/** The `count` best by top-1 (log-loss breaks ties) and the `count` best by log-loss. */
export function rankChoices(choices: EnsembleChoice[], count = 10): { byTop1: EnsembleChoice[]; byLogLoss: EnsembleChoice[] } {
  return {
    byTop1: [...choices].sort((a, b) => b.top1 - a.top1 || a.logLoss - b.logLoss).slice(0, count),
    byLogLoss: [...choices].sort((a, b) => a.logLoss - b.logLoss || b.top1 - a.top1).slice(0, count),
  };
}

/** A set's members as one line, each with its views in brackets where it has other views than the image alone. */
export function choiceMembers(c: EnsembleChoice): string {
  return c.members.map((m) => `${m.name}/${m.version}${m.tta ? ` [${m.tta.join(', ')}]` : ''}`).join(' + ');
}

/** One line per set: its figures, its cost, and its members. */
export function describeChoice(c: EnsembleChoice): string {
  return `${(c.top1 * 100).toFixed(2)}%  ${c.logLoss.toFixed(4)}  ${(c.macs / 1e6).toFixed(0).padStart(4)} M  ${choiceMembers(c)}`;
}

/** The fair estimate as one line, beside the in-sample figures it corrects. */
export function describeFair(f: FairEstimate): string {
  return `chosen on one half of the images and scored on the other (${f.halvings} random halvings, both ways): best by top-1 ${(f.top1 * 100).toFixed(2)}%, best by log-loss ${f.logLoss.toFixed(4)}: what the best set can be expected to score on new images`;
}
