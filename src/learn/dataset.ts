// Labelled image sets: a folder per class or a CSV of path and label; their fingerprint; and the
// stratified, seeded train/validation split, saved as plain lists of relative paths.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32, shuffleInPlace } from './random.js';

export interface LabelledImage {
  /** Absolute (or process-relative) path used to read the file. */
  file: string;
  /** Path relative to the dataset root, forward slashes: the image's identity in splits. */
  rel: string;
  label: string;
  bytes: number;
  /**
   * The frame's SHA-256 where the image is a stored frame (fine-tuning): its bytes are then read
   * only from a regular file that still holds exactly them, never through a link.
   */
  sha256?: string;
}

export interface Dataset {
  root: string;
  items: LabelledImage[];
  /** Sorted class names; a label's index here is its output index. */
  classes: string[];
  /** SHA-256 over the sorted (relative path, size) pairs. */
  fingerprint: string;
}

const IMAGE_EXT = /\.(jpe?g|png|tiff?)$/i;

/**
 * The labelled images `train`, `average` and `evaluate` read when --data is not given:
 * PLANKWATCH_NDSB_DIR, else none (--data is then required; no folder is assumed).
 */
export function defaultNdsbDir(): string | undefined {
  return process.env.PLANKWATCH_NDSB_DIR || undefined;
}

/**
 * Read a dataset: DIR/<class>/<image> (DIR/train/<class>/… is accepted too, as NDSB ships), or a
 * CSV file with a header and the columns path,label (paths relative to the CSV's folder).
 */
export async function readDataset(source: string): Promise<Dataset> {
  const items = statSync(source).isFile() ? await readCsv(source) : await readFolders(source);
  if (items.length === 0) throw new Error(`No images found in ${source}.`);
  items.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const classes = [...new Set(items.map((i) => i.label))].sort();
  return { root: source, items, classes, fingerprint: fingerprint(items) };
}

async function readFolders(dir: string): Promise<LabelledImage[]> {
  let root = dir;
  const nested = path.join(dir, 'train');
  if (existsSync(nested) && statSync(nested).isDirectory()) root = nested;
  const items: LabelledImage[] = [];
  for (const entry of (await readdir(root, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory()) continue;
    const classDir = path.join(root, entry.name);
    for (const name of (await readdir(classDir)).sort()) {
      if (!IMAGE_EXT.test(name)) continue;
      const file = path.join(classDir, name);
      items.push({ file, rel: `${entry.name}/${name}`, label: entry.name, bytes: (await stat(file)).size });
    }
  }
  return items;
}

async function readCsv(file: string): Promise<LabelledImage[]> {
  const base = path.dirname(file);
  const lines = (await readFile(file, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]!.split(',').map((h) => h.trim().toLowerCase());
  const pi = header.indexOf('path');
  const li = header.indexOf('label');
  if (pi < 0 || li < 0) throw new Error(`${file}: the first row must name the columns "path" and "label".`);
  const items: LabelledImage[] = [];
  for (const line of lines.slice(1)) {
    const cells = line.split(',');
    const rel = cells[pi]!.trim().replace(/\\/g, '/');
    const label = cells[li]!.trim();
    const abs = path.resolve(base, rel);
    items.push({ file: abs, rel, label, bytes: (await stat(abs)).size });
  }
  return items;
}

export function fingerprint(items: { rel: string; bytes: number }[]): string {
  const hash = createHash('sha256');
  for (const i of [...items].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))) hash.update(`${i.rel}\t${i.bytes}\n`);
  return hash.digest('hex');
}

export interface Split {
  seed: number;
  validationFraction: number;
  dataFingerprint: string;
  /** Relative paths. */
  train: string[];
  validation: string[];
}

/**
 * Stratified split: within each class (in sorted order), a seeded shuffle, then
 * round(n · fraction) images to validation (at least one when the class has two or more).
 */
export function stratifiedSplit(dataset: Dataset, validationFraction: number, seed: number): Split {
  const byClass = new Map<string, string[]>();
  for (const item of dataset.items) {
    const list = byClass.get(item.label) ?? [];
    list.push(item.rel);
    byClass.set(item.label, list);
  }
  const rng = mulberry32(seed);
  const train: string[] = [];
  const validation: string[] = [];
  for (const label of dataset.classes) {
    const rels = shuffleInPlace([...byClass.get(label)!], rng);
    let nVal = Math.round(rels.length * validationFraction);
    if (validationFraction > 0 && rels.length >= 2) nVal = Math.max(1, nVal);
    nVal = Math.min(nVal, rels.length - 1);
    validation.push(...rels.slice(0, Math.max(0, nVal)));
    train.push(...rels.slice(Math.max(0, nVal)));
  }
  train.sort();
  validation.sort();
  return { seed, validationFraction, dataFingerprint: dataset.fingerprint, train, validation };
}

/** Save a split as a folder: split.json (parameters) plus train.txt and validation.txt. */
export async function saveSplit(dir: string, split: Split): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { train, validation, ...params } = split;
  await writeFile(path.join(dir, 'split.json'), JSON.stringify({ ...params, trainCount: train.length, validationCount: validation.length }, null, 2) + '\n');
  await writeFile(path.join(dir, 'train.txt'), train.join('\n') + '\n');
  await writeFile(path.join(dir, 'validation.txt'), validation.join('\n') + '\n');
}

export async function loadSplit(dir: string): Promise<Split> {
  const params = JSON.parse(await readFile(path.join(dir, 'split.json'), 'utf8')) as Omit<Split, 'train' | 'validation'> & { trainCount?: number; validationCount?: number };
  const list = async (name: string) => (await readFile(path.join(dir, name), 'utf8')).split('\n').filter((l) => l !== '');
  const { seed, validationFraction, dataFingerprint } = params;
  return { seed, validationFraction, dataFingerprint, train: await list('train.txt'), validation: await list('validation.txt') };
}

/**
 * The training images of a model's recorded split (`split`, relative to the model's folder), or
 * null when it records none: what the leak checks compare held-out images against.
 */
export async function trainingImages(modelDir: string, split: string | undefined): Promise<string[] | null> {
  if (!split || !existsSync(path.join(modelDir, split, 'train.txt'))) return null;
  return (await loadSplit(path.join(modelDir, split))).train;
}

/** Items of the dataset whose relative paths are in `rels`, in dataset order. */
export function selectItems(dataset: Dataset, rels: Iterable<string>): LabelledImage[] {
  const wanted = new Set(rels);
  return dataset.items.filter((i) => wanted.has(i.rel));
}

/** Relative paths that appear in both lists (a leak): must be empty. */
export function overlap(a: Iterable<string>, b: Iterable<string>): string[] {
  const set = new Set(a);
  return [...b].filter((r) => set.has(r));
}

/**
 * A file's content identity, for leak checks that do not trust paths (the same image under two
 * names or two classes).
 */
export async function contentHashes(items: LabelledImage[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const item of items) out.set(item.rel, createHash('sha256').update(await readFile(item.file)).digest('hex'));
  return out;
}

export { shuffleInPlace };
