// Real NDSB images for the fine-tuning tests: class folders assembled from ../shared/data/ndsb/train
// (or PLANKWATCH_NDSB_DIR), a small base member trained on some classes, and scoring of an
// ensemble on labelled images through the training library (the inference path's preprocessing).
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { folderIO, readMeta } from '../../src/classify/model-files.js';
import { NO_AUGMENT } from '../../src/learn/augment.js';
import type { LabelledImage } from '../../src/learn/dataset.js';
import { remapRows } from '../../src/classify/classes.js';
import { scoreRows } from '../../src/learn/finetune/job-data.js';
import type { EnsembleScore } from '../../src/learn/finetune/gate.js';
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
