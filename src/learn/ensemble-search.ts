// `plankwatch evaluate --budget M`: the best ensembles that the daemon can afford. Every set of
// up to four candidate members, each with one view (the image) or two (the image and its quarter
// turn, as a member's own "tta" in ensemble.json gives it), whose multiply-adds per ROI fit the
// budget, scored by the soft vote on the held-out images; ranked by top-1 and by log-loss.
import { meanProbabilities } from '../classify/voting.js';
import { argmaxRow, logLoss } from './metrics.js';
import type { TtaTransform } from './tta.js';

/** The views a member may get in a searched set: the image alone, or with its quarter turn. */
export const SEARCH_VIEWS: TtaTransform[][] = [['identity'], ['identity', 'rot90']];

export interface SearchCandidate {
  name: string;
  version: string;
  /** Multiply-adds of one forward pass. */
  macs: number;
  /** Held-out probabilities (n rows of k) for each transform of SEARCH_VIEWS. */
  probs: Map<TtaTransform, Float32Array>;
}

export interface EnsembleChoice {
  /** In ensemble-file form: a member with two views carries them as its own "tta". */
  members: { name: string; version: string; tta?: TtaTransform[] }[];
  /** Multiply-adds per ROI, all members and views together. */
  macs: number;
  top1: number;
  logLoss: number;
}

/**
 * Score every affordable set (soft vote, equal weights, each member's views averaged first).
 * Returns them unsorted; `rankChoices` orders them.
 */
export function searchEnsembles(candidates: SearchCandidate[], labels: Int32Array, k: number, budgetMacs: number, maxMembers = 4): EnsembleChoice[] {
  const n = labels.length;
  // Each candidate with each view option, averaged once.
  const options = candidates.map((c) =>
    SEARCH_VIEWS.map((views) => {
      const rows = views.map((t) => {
        const p = c.probs.get(t);
        if (!p || p.length !== n * k) throw new Error(`${c.name}/${c.version}: no held-out probabilities for the ${t} view`);
        return p;
      });
      return { views, mean: meanProbabilities(rows), macs: c.macs * views.length };
    }),
  );
  const out: EnsembleChoice[] = [];
  const visit = (start: number, chosen: { c: number; o: number }[], macs: number) => {
    if (chosen.length > 0) {
      const vote = meanProbabilities(chosen.map(({ c, o }) => options[c]![o]!.mean));
      let correct = 0;
      for (let r = 0; r < n; r++) if (argmaxRow(vote, r, k) === labels[r]) correct++;
      out.push({
        members: chosen.map(({ c, o }) => {
          const m = candidates[c]!;
          const views = options[c]![o]!.views;
          return views.length > 1 ? { name: m.name, version: m.version, tta: [...views] } : { name: m.name, version: m.version };
        }),
        macs,
        top1: correct / n,
        logLoss: logLoss(vote, labels, k),
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
  return out;
}

/** The `count` best by top-1 (log-loss breaks ties) and the `count` best by log-loss. */
export function rankChoices(choices: EnsembleChoice[], count = 10): { byTop1: EnsembleChoice[]; byLogLoss: EnsembleChoice[] } {
  return {
    byTop1: [...choices].sort((a, b) => b.top1 - a.top1 || a.logLoss - b.logLoss).slice(0, count),
    byLogLoss: [...choices].sort((a, b) => a.logLoss - b.logLoss || b.top1 - a.top1).slice(0, count),
  };
}

/** A set's members as one line, "×2" marking a member with two views. */
export function choiceMembers(c: EnsembleChoice): string {
  return c.members.map((m) => `${m.name}/${m.version}${m.tta ? ' ×2' : ''}`).join(' + ');
}

/** One line per set: its figures, its cost, and its members. */
export function describeChoice(c: EnsembleChoice): string {
  return `${(c.top1 * 100).toFixed(2)}%  ${c.logLoss.toFixed(4)}  ${(c.macs / 1e6).toFixed(0).padStart(4)} M  ${choiceMembers(c)}`;
}
