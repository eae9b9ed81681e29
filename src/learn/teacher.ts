// Knowledge distillation: an ensemble file's soft vote on the training images, used as soft
// targets for a student (`plankwatch train --teacher FILE --distill A`). The teacher may be far
// more costly than the daemon can afford (more members, more views); the student learns what
// the teacher knows about which classes look alike, at one network's cost.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { remapRows } from '../classify/classes.js';
import { loadEnsemble } from '../classify/ensemble-loader.js';
import { inferenceModel } from '../classify/folded-model.js';
import { folderIO } from '../classify/model-files.js';
import { loadSplit, type Dataset } from './dataset.js';
import { loadImageTable, subTable } from './image-cache.js';
import { predictTable } from './trainer.js';
import { transformBatch } from './tta.js';

/** What meta.json records about the teacher of a distilled model. */
export interface TeacherRecord {
  ensemble: string;
  version: string;
  members: string[];
  /** Weight of the teacher's probabilities in the target (the rest is the label). */
  distill: number;
}

export interface TeacherTargets {
  /** One row of probabilities per image of `rels`, over the dataset's classes. */
  targets: Float32Array;
  record: Omit<TeacherRecord, 'distill'>;
}

/**
 * The teacher's soft vote on `rels` (the student's training images). Every teacher member must
 * have been trained on a split with none of `heldOut` among its training images, or the student
 * would learn the held-out images through it; a member without a recorded split is refused too.
 * With `cacheFile`, targets computed before for the same images are read back (--resume).
 * `stopRequested` is asked before each member's view (a stop request ends the run there).
 */
export async function teacherTargets(
  ensembleFile: string,
  dataset: Dataset,
  rels: string[],
  heldOut: string[],
  options: { modelsDir?: string; cacheFile?: string; log?: (line: string) => void; stopRequested?: () => boolean } = {},
): Promise<TeacherTargets> {
  const log = options.log ?? (() => {});
  const modelsDir = options.modelsDir ?? path.dirname(ensembleFile);
  const ensemble = await loadEnsemble(ensembleFile, modelsDir);
  const k = dataset.classes.length;
  const record = { ensemble: ensembleFile, version: ensemble.file.version, members: ensemble.members.map((m) => `${m.name}/${m.version}`) };

  const held = new Set(heldOut);
  for (const m of ensemble.members) {
    const split = m.meta.training.split;
    if (!split || !existsSync(path.join(m.dir, split, 'train.txt'))) {
      throw new Error(`--teacher: ${m.name}/${m.version} records no training split, so it cannot be shown to have never trained on this run's held-out images; use members trained on this split.`);
    }
    const seen = (await loadSplit(path.join(m.dir, split))).train.filter((r) => held.has(r)).length;
    if (seen > 0) {
      throw new Error(`--teacher: ${m.name}/${m.version} was trained on ${seen} of this run's ${heldOut.length} held-out images; a student taught by it would be scored on images it has learned. Use members trained on this run's split.`);
    }
  }

  if (options.cacheFile && existsSync(options.cacheFile)) {
    const bytes = await readFile(options.cacheFile);
    if (bytes.byteLength === rels.length * k * 4) {
      log(`teacher: targets read back from ${options.cacheFile}`);
      return { targets: new Float32Array(bytes.buffer, bytes.byteOffset, rels.length * k).slice(), record };
    }
  }

  const items = dataset.items;
  const sum = new Float32Array(rels.length * k);
  let total = 0;
  for (const m of ensemble.members) {
    const model = inferenceModel(await tfl.loadLayersModel(folderIO(m.dir)));
    const full = await loadImageTable(items, m.meta.input.size, m.meta.preprocessing);
    const table = subTable(dataset, full, rels).table;
    const views = m.tta;
    const weight = m.weight;
    const t0 = performance.now();
    for (const view of views) {
      // Ctrl-C / SIGTERM before training began: nothing is written, so say so and stop here.
      await new Promise((resolve) => setImmediate(resolve));
      if (options.stopRequested?.()) throw new Error('stopped while the teacher\'s targets were computed, before training began; nothing was written.');
      const probs = remapRows(predictTable(model, table, 64, (x) => transformBatch(x, view)), m.meta.classes, dataset.classes);
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + (probs[i]! * weight) / views.length;
    }
    model.dispose();
    total += weight;
    log(`teacher: ${m.name}/${m.version} (${views.join(', ')}) on ${rels.length} training images in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! / total;

  if (options.cacheFile) {
    await mkdir(path.dirname(options.cacheFile), { recursive: true });
    await writeFile(`${options.cacheFile}.tmp`, new Uint8Array(sum.buffer));
    await rename(`${options.cacheFile}.tmp`, options.cacheFile);
  }
  return { targets: sum, record };
}
