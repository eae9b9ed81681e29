// Knowledge distillation: an ensemble file's soft vote on the training images, used as soft
// targets for a student (`plankwatch train --teacher FILE --distill A`). The teacher may be far
// more costly than the daemon can afford (more members, more views); the student learns what
// the teacher knows about which classes look alike, at one network's cost.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { remapRows } from '../classify/classes.js';
import { loadEnsemble } from '../classify/ensemble-loader.js';
import { inferenceModel } from '../classify/folded-model.js';
import { folderIO } from '../classify/model-files.js';
import { overlap, trainingImages, type Dataset } from './dataset.js';
import type { CameraProfile } from '../preprocess/camera.js';
import { loadImageTable, subTable } from './image-cache.js';
import { predictTable } from './trainer.js';
import { transformBatch } from './tta.js';
import { preparedBackground } from '../preprocess/prepare.js';
import { voteRows } from './voting.js';

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
 * With `cacheDir`, targets computed before by the same teacher (members, weights, views, weights
 * files) on the same images are read back (--resume); any other teacher computes its own.
 * `stopRequested` is asked before each member's view (a stop request ends the run there).
 */
export async function teacherTargets(
  ensembleFile: string,
  dataset: Dataset,
  rels: string[],
  heldOut: string[],
  options: { modelsDir?: string; cacheDir?: string; log?: (line: string) => void; stopRequested?: () => boolean; camera?: CameraProfile } = {},
): Promise<TeacherTargets> {
  const log = options.log ?? (() => {});
  const modelsDir = options.modelsDir ?? path.dirname(ensembleFile);
  const ensemble = await loadEnsemble(ensembleFile, modelsDir);
  const k = dataset.classes.length;
  const record = { ensemble: ensembleFile, version: ensemble.file.version, members: ensemble.members.map((m) => `${m.name}/${m.version}`) };

  for (const m of ensemble.members) {
    const trained = await trainingImages(m.dir, m.meta.training.split);
    if (!trained) {
      throw new Error(`--teacher: ${m.name}/${m.version} records no training split, so it cannot be shown to have never trained on this run's held-out images; use members trained on this split.`);
    }
    const seen = overlap(trained, heldOut).length;
    if (seen > 0) {
      throw new Error(`--teacher: ${m.name}/${m.version} was trained on ${seen} of this run's ${heldOut.length} held-out images; a student taught by it would be scored on images it has learned. Use members trained on this run's split.`);
    }
  }

  // The targets depend on the members (and their weights files), their vote weights and views, and the images.
  const key = createHash('sha256')
    .update(JSON.stringify({ members: ensemble.members.map((m) => [m.name, m.version, m.weight, m.tta, m.meta.checksums ?? null]), classes: dataset.classes, rels }))
    .digest('hex')
    .slice(0, 16);
  const cacheFile = options.cacheDir && path.join(options.cacheDir, `teacher-${key}.f32`);
  if (cacheFile && existsSync(cacheFile)) {
    const bytes = await readFile(cacheFile);
    log(`teacher: targets read back from ${cacheFile}`);
    return { targets: new Float32Array(bytes.buffer, bytes.byteOffset, rels.length * k).slice(), record };
  }

  const perMember: Float32Array[] = [];
  for (const m of ensemble.members) {
    const model = inferenceModel(await tfl.loadLayersModel(folderIO(m.dir)));
    const table = subTable(dataset, await loadImageTable(dataset.items, m.meta.input.size, m.meta.preprocessing, { camera: options.camera, channels: m.meta.input.channels }), rels).table;
    const t0 = performance.now();
    const views: Float32Array[] = [];
    const fill = preparedBackground(m.meta.preprocessing);
    for (const view of m.tta) {
      // Ctrl-C / SIGTERM before training began: nothing is written, so say so and stop here.
      await new Promise((resolve) => setImmediate(resolve));
      if (options.stopRequested?.()) throw new Error('stopped while the teacher\'s targets were computed, before training began; nothing was written.');
      views.push(remapRows(predictTable(model, table, 64, (x) => transformBatch(x, view, fill)), m.meta.classes, dataset.classes));
    }
    model.dispose();
    perMember.push(voteRows('soft', views, k));
    log(`teacher: ${m.name}/${m.version} (${m.tta.join(', ')}) on ${rels.length} training images in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const targets = voteRows('soft', perMember, k, ensemble.members.map((m) => m.weight));

  if (cacheFile) {
    await mkdir(path.dirname(cacheFile), { recursive: true });
    await writeFile(`${cacheFile}.tmp`, new Uint8Array(targets.buffer));
    await rename(`${cacheFile}.tmp`, cacheFile);
  }
  return { targets, record };
}
