// The images of a fine-tuning job: the validated labels, the replay sample of each member's own
// training data, the evaluation set, and scoring probabilities on it.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { MemberMeta } from '../../classify/meta.js';
import { loadSplit, type Dataset, type LabelledImage } from '../dataset.js';
import { computeMetrics } from '../metrics.js';
import { deriveSeed, mulberry32, shuffleInPlace } from '../random.js';
import type { EnsembleScore } from './gate.js';
import type { FinetuneJob, JobLabel } from './job.js';
export function labelItem(l: JobLabel): LabelledImage {
  let bytes = 0;
  try {
    bytes = statSync(l.file).size;
  } catch {
    // Checked by the caller; a vanished file fails loudly when read.
  }
  return { file: l.file, rel: `labels/${l.sha256}`, label: l.label, bytes };
}

/**
 * Replay images for one member: drawn from its own training split (meta.json names it) when the
 * split belongs to this folder, else from every image of the classes it knows; `replayPerClass`
 * per class, seeded.
 */
export async function replaySample(replay: Dataset, meta: MemberMeta, dir: string, job: FinetuneJob, warnings: string[]): Promise<LabelledImage[]> {
  let pool = replay.items.filter((i) => meta.classes.includes(i.label));
  const splitRel = meta.training.split;
  if (splitRel) {
    const splitDir = path.resolve(dir, splitRel);
    if (existsSync(path.join(splitDir, 'train.txt'))) {
      const split = await loadSplit(splitDir);
      if (split.dataFingerprint === replay.fingerprint) {
        const trained = new Set(split.train);
        pool = pool.filter((i) => trained.has(i.rel));
      } else {
        warnings.push(`${meta.name}/${meta.version}: its training split was made for other data than ${replay.root}; replay drawn from all images of its classes`);
      }
    }
  }
  const byClass = new Map<string, LabelledImage[]>();
  for (const item of pool) {
    const list = byClass.get(item.label) ?? [];
    list.push(item);
    byClass.set(item.label, list);
  }
  const rng = mulberry32(deriveSeed(job.seed, 'replay', meta.name, job.runId));
  const out: LabelledImage[] = [];
  for (const label of [...byClass.keys()].sort()) out.push(...shuffleInPlace([...byClass.get(label)!], rng).slice(0, job.replayPerClass));
  return out;
}

export function limitStratified(items: LabelledImage[], limit: number, seed: number): LabelledImage[] {
  if (limit <= 0 || items.length <= limit) return items;
  const rng = mulberry32(deriveSeed(seed, 'eval-limit'));
  const picked = shuffleInPlace([...items], rng).slice(0, limit);
  return picked.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** Top-1 accuracy and per-class recall of probability rows against the items' labels. */
export function scoreRows(probs: Float32Array, items: { label: string }[], classes: string[]): EnsembleScore {
  const index = new Map(classes.map((c, i) => [c, i]));
  const labels = Int32Array.from(items.map((i) => index.get(i.label)!));
  const m = computeMetrics(probs, labels, classes.length);
  const perClass: EnsembleScore['perClass'] = {};
  m.perClass.forEach((c, i) => {
    if (c.support > 0) perClass[classes[i]!] = { recall: c.recall, support: c.support };
  });
  return { accuracy: m.top1, count: m.count, perClass };
}
