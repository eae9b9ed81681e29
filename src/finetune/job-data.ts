// The images of a fine-tuning job: the validated labels, the replay sample of the classes each
// member knows (the ship's own frames, the shipped reference set, an optional folder), the
// reference part of the evaluation set, and scoring probabilities on it.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { MemberMeta } from '../classify/meta.js';
import { loadSplit, readDataset, type Dataset, type LabelledImage } from '../learn/dataset.js';
import { loadImageTable, type ImageTable } from '../learn/image-cache.js';
import { computeMetrics } from '../learn/metrics.js';
import type { CameraProfile } from '../preprocess/index.js';
import type { PreprocessSpec } from '../types.js';
import { deriveSeed, mulberry32, shuffleInPlace } from '../learn/random.js';
import type { EnsembleScore } from './gate.js';
import type { EvaluationSets, FinetuneJob, JobLabel } from './job.js';
import { NO_AUGMENT, type AugmentOptions } from '../learn/augment.js';
/**
 * The augmentation of fine-tuning aboard (finetune.augment): only what never changes a plankton's
 * class or look (any rotation, a mirror), so the members' old classes see the images they were
 * trained on. Not the transfer recipe's (augment.ts FINETUNE_AUGMENT).
 */
export const ABOARD_AUGMENT: AugmentOptions = { ...NO_AUGMENT, rotate: 180, flip: true };

export function labelItem(l: JobLabel): LabelledImage {
  let bytes = 0;
  try {
    bytes = statSync(l.file).size;
  } catch {
    // Checked by the caller; a vanished file fails loudly when read.
  }
  return { file: l.file, rel: `labels/${l.sha256}`, label: l.label, bytes, sha256: l.sha256 };
}

/** Where a member's replay images came from. */
export interface ReplayCounts {
  /** The ship's own high-confidence classified frames. */
  frames: number;
  /** The shipped reference set (referenceData/replay). */
  reference: number;
  /** The finetune.replayData folder. */
  folder: number;
}

/** The replay sources of a job, read once for all members. */
export interface ReplayPools {
  frames: LabelledImage[];
  reference: Dataset | null;
  folder: Dataset | null;
}

export async function replayPools(job: FinetuneJob, warnings: string[]): Promise<ReplayPools> {
  const frames = (job.replayFrames ?? []).map((l) => labelItem(l));
  const referenceDir = job.referenceData ? path.join(job.referenceData, 'replay') : null;
  const reference = referenceDir ? await readFolder(referenceDir, warnings) : null;
  const folder = job.replayData ? await readFolder(job.replayData, warnings) : null;
  return { frames, reference, folder };
}

/**
 * The shipped reference set's evaluation images (referenceData/eval) of the given classes: never
 * trained on, taken whole into every run's gate set.
 */
export async function referenceEvalItems(referenceData: string | null, classes: ReadonlySet<string>): Promise<LabelledImage[]> {
  if (!referenceData) return [];
  const dataset = await readFolder(path.join(referenceData, 'eval'), []);
  return dataset ? dataset.items.filter((i) => classes.has(i.label)).map((i) => ({ ...i, rel: `reference-eval/${i.rel}` })) : [];
}

async function readFolder(dir: string, warnings: string[]): Promise<Dataset | null> {
  if (!existsSync(dir)) return null;
  try {
    return await readDataset(dir);
  } catch (err) {
    warnings.push(`${dir}: ${(err as Error).message} Left out.`);
    return null;
  }
}

/**
 * Replay images for one member, `replayPerClass` per class it knows, seeded: the ship's own
 * frames first (this cruise's water), then the shipped reference set, then the folder (from the
 * member's own training split when meta.json names one made for that folder, else from every
 * image of its classes).
 */
export async function replaySample(
  pools: ReplayPools,
  meta: MemberMeta,
  dir: string,
  job: FinetuneJob,
  warnings: string[],
): Promise<{ items: LabelledImage[]; counts: ReplayCounts }> {
  const known = new Set(meta.classes);
  let folderPool = pools.folder?.items.filter((i) => known.has(i.label)) ?? [];
  const splitRel = meta.training.split;
  if (pools.folder && splitRel) {
    const splitDir = path.resolve(dir, splitRel);
    if (existsSync(path.join(splitDir, 'train.txt'))) {
      const split = await loadSplit(splitDir);
      if (split.dataFingerprint === pools.folder.fingerprint) {
        const trained = new Set(split.train);
        folderPool = folderPool.filter((i) => trained.has(i.rel));
      } else {
        warnings.push(`${meta.name}/${meta.version}: its training split was made for other data than ${pools.folder.root}; replay drawn from all images of its classes`);
      }
    }
  }
  const sources: [keyof ReplayCounts, LabelledImage[]][] = [
    ['frames', pools.frames.filter((i) => known.has(i.label))],
    ['reference', pools.reference?.items.filter((i) => known.has(i.label)).map((i) => ({ ...i, rel: `reference-replay/${i.rel}` })) ?? []],
    ['folder', folderPool],
  ];
  const rng = mulberry32(deriveSeed(job.seed, 'replay', meta.name, job.runId));
  const counts: ReplayCounts = { frames: 0, reference: 0, folder: 0 };
  const out: LabelledImage[] = [];
  for (const label of [...known].sort()) {
    let room = job.replayPerClass;
    for (const [source, pool] of sources) {
      if (room <= 0) break;
      const picked = shuffleInPlace(pool.filter((i) => i.label === label), rng).slice(0, room);
      out.push(...picked);
      counts[source] += picked.length;
      room -= picked.length;
    }
  }
  return { items: out, counts };
}

/**
 * The pixels of replay (or evaluation) images: the ship's own frames (labelItem's "labels/" rows)
 * decoded afresh each run through the ship's camera profile, the files of the shipped and folder
 * sets through the image cache (the same files run after run; `cache: false` not even there), in
 * the items' order. The files come from other cameras (the shipped reference set is NDSB's
 * bright-field one): on a ship whose camera is not bright-field their polarity is found per image.
 */
export async function loadReplayTable(items: LabelledImage[], size: number, spec: PreprocessSpec, camera?: CameraProfile, options: { cache?: boolean; channels?: 1 | 3 } = {}): Promise<ImageTable> {
  const own = items.filter((i) => i.rel.startsWith('labels/'));
  const files = items.filter((i) => !i.rel.startsWith('labels/'));
  const folders: CameraProfile | undefined = camera && camera.polarity !== 'bright-field' ? { ...camera, polarity: 'auto' } : undefined;
  const channels = options.channels ?? 1;
  const ownTable = own.length > 0 ? await loadImageTable(own, size, spec, { cache: false, camera, channels }) : null;
  const fileTable = files.length > 0 ? await loadImageTable(files, size, spec, { cache: options.cache, camera: folders, channels }) : null;
  const one = size * size * channels;
  const pixels = new Uint8Array(items.length * one);
  let o = 0;
  let f = 0;
  items.forEach((item, r) => {
    const [table, k] = item.rel.startsWith('labels/') ? [ownTable!, o++] : [fileTable!, f++];
    pixels.set(table.pixels.subarray(k * one, (k + 1) * one), r * one);
  });
  return { size, ...(channels === 3 ? { channels } : {}), pixels, rels: items.map((i) => i.rel) };
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

/**
 * The frozen evaluation set of the gate: the ship's held-out slice of confirmed frames, the shipped
 * reference set, and the images of finetune.evalData, of the classes the gate measures.
 */
export async function gateEvaluationSet(job: FinetuneJob, gateClasses: Set<string>, warnings: string[]): Promise<{ items: LabelledImage[]; sets: EvaluationSets }> {
  const items: LabelledImage[] = job.evalLabels.map((l) => labelItem(l));
  const reference = await referenceEvalItems(job.referenceData ?? null, gateClasses);
  items.push(...reference);
  let folderItems: LabelledImage[] = [];
  if (job.evalData && existsSync(job.evalData)) {
    const ds = await readDataset(job.evalData);
    folderItems = limitStratified(ds.items.filter((i) => gateClasses.has(i.label)), job.evalLimit, job.seed);
    items.push(...folderItems);
  } else if (job.evalData) {
    warnings.push(`evaluation folder ${job.evalData} not found: left out of the gate set`);
  }
  return { items, sets: { ship: job.evalLabels.length, reference: reference.length, folder: folderItems.length } };
}
