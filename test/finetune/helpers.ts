// Real NDSB images for the fine-tuning tests: class folders assembled from ../shared/data/ndsb/train
// (or PLANKWATCH_NDSB_DIR), a small base member trained on some classes, and scoring of an
// ensemble on labelled images through the training library (the inference path's preprocessing).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { pino, type Logger } from 'pino';
import type { EnsembleFile, MemberMeta } from '../../src/classify/meta.js';
import { folderIO, readMeta, writeMeta } from '../../src/classify/model-files.js';
import { buildModel } from '../../src/learn/architectures.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { ReviewStore } from '../../src/review/review-store.js';
import { Store } from '../../src/store/store.js';
import type { ClassifiedFrame } from '../../src/types.js';
import type { FixtureImage } from '../helpers/images.js';
import { NO_AUGMENT } from '../../src/learn/augment.js';
import type { LabelledImage } from '../../src/learn/dataset.js';
import { remapRows } from '../../src/classify/classes.js';
import { scoreRows } from '../../src/finetune/job-data.js';
import type { EnsembleScore } from '../../src/finetune/gate.js';
import { loadImageTable } from '../../src/learn/image-cache.js';
import { runTraining } from '../../src/learn/train-run.js';
import { predictTable } from '../../src/learn/trainer.js';
import { voteRows } from '../../src/learn/voting.js';
import { alignClasses } from '../../src/classify/classes.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

/** The NDSB training folder, or undefined when this machine has none. */
export function ndsbTrainDir(): string | undefined {
  const candidates = [process.env.PLANKWATCH_NDSB_DIR, path.resolve(REPO_ROOT, '../shared/data/ndsb/train')];
  for (const c of candidates) {
    if (!c || !existsSync(c)) continue;
    if (existsSync(path.join(c, 'train'))) return path.join(c, 'train');
    return c;
  }
  return undefined;
}

/** Sorted image files of one NDSB class. */
export function classFiles(root: string, cls: string): string[] {
  return readdirSync(path.join(root, cls))
    .filter((n) => /\.(jpe?g|png)$/i.test(n))
    .sort()
    .map((n) => path.join(root, cls, n));
}

/** Copy files into DIR/<class>/. */
export async function makeFolder(dir: string, byClass: Record<string, string[]>): Promise<string> {
  for (const [cls, files] of Object.entries(byClass)) {
    await mkdir(path.join(dir, cls), { recursive: true });
    for (const f of files) await copyFile(f, path.join(dir, cls, path.basename(f)));
  }
  return dir;
}

/** Train the base member (pw-tiny-32) on a class folder and write an ensemble file naming it. */
export async function trainBase(options: { data: string; modelsDir: string; member: string; version: string; epochs: number; seed: number }): Promise<EnsembleFile> {
  await runTraining({
    data: options.data,
    member: options.member,
    architecture: 'pw-tiny-32',
    modelsDir: options.modelsDir,
    version: options.version,
    seed: options.seed,
    validationFraction: 0.1,
    epochs: options.epochs,
    batchSize: 32,
    learningRate: 0.004,
    weightDecay: 0,
    classWeights: 'balanced',
    augment: { ...NO_AUGMENT, rotate: 180, flip: true },
    patience: 0,
    maxMinutes: 0,
    resume: false,
    backend: 'wasm',
    command: 'plankwatch train (fine-tuning test base)',
  });
  const ensemble: EnsembleFile = { version: `base-${options.version}`, voting: 'soft', members: [{ name: options.member, version: options.version }] };
  await writeFile(path.join(options.modelsDir, 'ensemble.json'), JSON.stringify(ensemble, null, 2));
  return ensemble;
}

/** Accuracy and per-class recall of an ensemble on labelled files. */
export async function scoreEnsemble(modelsDir: string, ensemble: EnsembleFile, items: { file: string; label: string }[]): Promise<EnsembleScore> {
  const images: LabelledImage[] = items.map((i, n) => ({ file: i.file, rel: `${n}/${path.basename(i.file)}`, label: i.label, bytes: 0 }));
  const metas = [];
  const probs: Float32Array[] = [];
  for (const m of ensemble.members) {
    const dir = path.join(modelsDir, m.name, m.version);
    const meta = await readMeta(dir);
    const model = await tfl.loadLayersModel(folderIO(dir));
    const table = await loadImageTable(images, meta.input.size, meta.preprocessing, { cache: false });
    probs.push(predictTable(model, table));
    model.dispose();
    metas.push(meta);
  }
  const classes = alignClasses([...metas.map((m) => m.classes), items.map((i) => i.label)]).classes;
  const voted = voteRows(ensemble.voting, probs.map((p, i) => remapRows(p, metas[i]!.classes, classes)), classes.length, ensemble.members.map((m) => m.weight ?? 1));
  return scoreRows(voted, items, classes);
}

/** A fine-tuning member of the tiny test architecture (untrained, seeded) and an ensemble file naming it. */
export async function saveTinyMember(
  modelsDir: string,
  classes: string[],
  options: { name?: string; version?: string; ensembleVersion?: string; metrics?: MemberMeta['metrics']; split?: string } = {},
): Promise<EnsembleFile> {
  const name = options.name ?? 'tiny';
  const version = options.version ?? 'v1';
  await tf.setBackend('cpu');
  const model = buildModel('pw-tiny-32', { numClasses: classes.length, seed: 2 });
  const dir = path.join(modelsDir, name, version);
  await model.save(folderIO(dir));
  model.dispose();
  const meta: MemberMeta = {
    name,
    version,
    classes,
    input: { size: 32, channels: 1 },
    preprocessing: DEFAULT_PREPROCESS,
    architecture: 'pw-tiny-32',
    training: { command: 'test', seed: 2, dataFingerprint: 'none', ...(options.split ? { split: options.split } : {}) },
    metrics: options.metrics ?? {},
    parent: null,
    createdAt: '2026-11-28T00:00:00Z',
  };
  await writeMeta(dir, meta);
  const ensemble: EnsembleFile = { version: options.ensembleVersion ?? 'E1', voting: 'soft', members: [{ name, version }] };
  await writeFile(path.join(modelsDir, 'ensemble.json'), JSON.stringify(ensemble));
  return ensemble;
}

export interface ShipFrame {
  image: FixtureImage;
  /** The ensemble's label for it. */
  predicted: string;
  /** The ensemble's probability for that label. */
  probability: number;
}

export interface ShipStore {
  dir: string;
  watchDir: string;
  archiveDir: string;
  store: Store;
  review: ReviewStore;
  cleanup: () => void;
}

/**
 * A real store on a temp file holding real images as frames classified on board (their files in
 * the archive folder, as ingest.onProcessed "archive" leaves them), every member agreeing.
 */
export function shipStore(frames: ShipFrame[], knownClasses: string[], t0 = Date.UTC(2026, 10, 28, 20, 0, 0)): ShipStore {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pw-ship-'));
  const watchDir = path.join(dir, 'incoming');
  const archiveDir = path.join(dir, 'archive');
  mkdirSync(watchDir, { recursive: true });
  const store = new Store({ path: path.join(dir, 'pw.db'), countsWindowMs: 60_000, logger: silentLogger(), now: () => t0 });
  store.open();
  const batch: ClassifiedFrame[] = frames.map((f, i) => {
    const relPath = `cast-1/${f.image.label}-${f.image.name}`;
    const target = path.join(archiveDir, relPath);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, f.image.bytes);
    const second = knownClasses.find((c) => c !== f.predicted) ?? f.predicted;
    return {
      frame: { file: { path: target, relPath, sha256: f.image.sha256, bytes: f.image.bytes.length, arrivedAt: t0 + i }, width: 40, height: 30, area: 300, format: 'jpeg', inputs: new Map() },
      prediction: {
        label: f.predicted,
        probability: f.probability,
        margin: f.probability - (1 - f.probability),
        disagreement: 0,
        topK: [{ label: f.predicted, probability: f.probability }, { label: second, probability: 1 - f.probability }],
        members: [{ member: 'tiny', version: 'v1', topK: [{ label: f.predicted, probability: f.probability }] }],
        ensembleVersion: 'E1',
      },
      classifiedAt: t0 + i,
    };
  });
  store.recordClassified(batch);
  let clock = t0 + 3_600_000;
  const review = new ReviewStore({ repository: store.reviewRepository(), knownClasses: () => knownClasses, now: () => clock++ });
  return {
    dir,
    watchDir,
    archiveDir,
    store,
    review,
    cleanup: () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface LogLine {
  level: number;
  msg: string;
  code?: string;
  err?: { message: string; stack?: string };
  [key: string]: unknown;
}

/** A real pino logger whose lines are kept, parsed, in `lines`. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n')) if (text.trim() !== '') lines.push(JSON.parse(text) as LogLine);
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** Write images into DIR/<class>/<name>. */
export function writeFolder(dir: string, images: FixtureImage[]): string {
  for (const image of images) {
    mkdirSync(path.join(dir, image.label), { recursive: true });
    writeFileSync(path.join(dir, image.label, image.name), image.bytes);
  }
  return dir;
}
