// `train --from` with the lab's own classes: every class the parent also has (by name, after
// --category-map renames it) starts from the parent's classifier row, so that before any training
// step the new network ranks those classes as the parent does; classes new to the parent start fresh.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberMeta } from '../../src/classify/meta.js';
import { folderIO, writeMeta } from '../../src/classify/model-files.js';
import { initBackend } from '../../src/engine/backend.js';
import { buildModel } from '../../src/learn/architectures.js';
import { readCategoryMap } from '../../src/learn/ecotaxa-data.js';
import { runTraining } from '../../src/learn/train-run.js';
import { transferModel } from '../../src/learn/transfer.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { fixtureImages } from '../helpers/images.js';
import { tinyTrainOptions } from '../helpers/training.js';

const work = mkdtempSync(path.join(tmpdir(), 'pw-head-'));
process.env.PLANKWATCH_CACHE_DIR = path.join(work, 'cache');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const PARENT_CLASSES = ['amphipod', 'copepod', 'diatom', 'larvacean', 'radiolarian'];
/** The lab's classes: three the parent has (in another order), two new to it. */
const LAB_CLASSES = ['larvacean', 'ctenophore', 'amphipod', 'radiolarian', 'pteropod'];

/** A tiny parent whose classifier has distinct, non-zero biases (a trained one's are not zero). */
async function tinyParent(dir: string): Promise<tfl.LayersModel> {
  const model = buildModel('pw-tiny-32', { numClasses: PARENT_CLASSES.length, seed: 11 });
  const logits = model.getLayer('logits');
  const [kernel] = logits.getWeights();
  logits.setWeights([kernel!, tf.tensor1d([0.3, -0.2, 0.5, -0.4, 0.1])]);
  await model.save(folderIO(dir));
  const meta: MemberMeta = {
    name: 'parent', version: 'v1', classes: PARENT_CLASSES, input: { size: 32, channels: 1 }, preprocessing: DEFAULT_PREPROCESS,
    architecture: 'pw-tiny-32', training: { command: 'test', seed: 11, dataFingerprint: 'test' }, metrics: {}, createdAt: new Date(0).toISOString(),
  };
  await writeMeta(dir, meta);
  return model;
}

describe('a new classifier from the parent\'s rows', () => {
  let parentDir = '';
  let parent: tfl.LayersModel;
  beforeAll(async () => {
    await initBackend('wasm');
    parentDir = path.join(work, 'models', 'parent', 'v1');
    parent = await tinyParent(parentDir);
  });
  afterAll(() => parent?.dispose());

  it('carries the weights and bias of every shared class; the new classes start fresh', async () => {
    const { model, head } = await transferModel(parentDir, LAB_CLASSES, { seed: 1 });
    expect(head).toEqual({ carried: ['larvacean', 'amphipod', 'radiolarian'], fresh: ['ctenophore', 'pteropod'] });
    const [theirKernel, theirBias] = parent.getLayer('logits').getWeights().map((w) => w.arraySync() as number[] | number[][]);
    const [kernel, bias] = model.getLayer('logits').getWeights().map((w) => w.arraySync() as number[] | number[][]);
    const column = (k: number[][], j: number) => k.map((row) => row[j]!);
    for (const [j, c] of LAB_CLASSES.entries()) {
      const i = PARENT_CLASSES.indexOf(c);
      if (i < 0) {
        expect((bias as number[])[j]).toBe(0);
        expect(column(kernel as number[][], j).some((w) => w !== 0)).toBe(true);
        continue;
      }
      expect(column(kernel as number[][], j)).toEqual(column(theirKernel as number[][], i));
      expect((bias as number[])[j]).toBe((theirBias as number[])[i]);
    }
    // The dense layer before the classifier, and the convolutions, are the parent's.
    for (const layer of ['dense1', 'b1c1_conv']) {
      expect(model.getLayer(layer).getWeights()[0]!.arraySync()).toEqual(parent.getLayer(layer).getWeights()[0]!.arraySync());
    }
    model.dispose();
  });

  it('ranks the shared classes as the parent does before any training step', async () => {
    const { model } = await transferModel(parentDir, LAB_CLASSES, { seed: 1 });
    const images = tf.randomUniform([12, 32, 32, 1], 0, 1, 'float32', 5);
    const theirs = (parent.predict(images) as tf.Tensor).arraySync() as number[][];
    const ours = (model.predict(images) as tf.Tensor).arraySync() as number[][];
    const shared = LAB_CLASSES.filter((c) => PARENT_CLASSES.includes(c));
    const orderings = new Set<string>();
    theirs.forEach((p, n) => {
      const byParent = [...shared].sort((a, b) => p[PARENT_CLASSES.indexOf(b)]! - p[PARENT_CLASSES.indexOf(a)]!);
      const byChild = [...shared].sort((a, b) => ours[n]![LAB_CLASSES.indexOf(b)]! - ours[n]![LAB_CLASSES.indexOf(a)]!);
      expect(byChild).toEqual(byParent);
      orderings.add(byParent.join());
      // The same logits: the ratio of any two shared classes' probabilities is the parent's.
      const ratio = (q: number[], names: string[], a: string, b: string) => Math.log(q[names.indexOf(a)]! / q[names.indexOf(b)]!);
      expect(ratio(ours[n]!, LAB_CLASSES, 'larvacean', 'amphipod')).toBeCloseTo(ratio(p, PARENT_CLASSES, 'larvacean', 'amphipod'), 4);
      expect(ratio(ours[n]!, LAB_CLASSES, 'radiolarian', 'amphipod')).toBeCloseTo(ratio(p, PARENT_CLASSES, 'radiolarian', 'amphipod'), 4);
    });
    expect(orderings.size).toBeGreaterThan(1); // the images do not all rank the classes alike
    images.dispose();
    model.dispose();
  });

  it('does not grow the tensor count beyond the new model\'s weights', async () => {
    const before = tf.memory().numTensors;
    const { model } = await transferModel(parentDir, LAB_CLASSES, { seed: 1 });
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('train --from an EcoTaxa export whose categories the map renames to the parent\'s classes', () => {
  it('records in meta.json which classes were carried and which are new', async () => {
    const models = path.join(work, 'runs');
    const base = tinyTrainOptions(models, 'plankwatch train (test)');
    const parent = await runTraining({ ...base, version: 'p', epochs: 1 });
    // The lab's export: EcoTaxa names for three fixture classes (two renamed by the map to the
    // parent's names, one already named as the parent's), and a category the parent lacks.
    const LAB: Record<string, string> = { acantharia_protist: 'Acantharea', chaetognath_other: 'Chaetognatha', detritus_other: 'detritus_other', trichodesmium_puff: 'Oscillatoriales' };
    const dir = path.join(work, 'export');
    mkdirSync(dir, { recursive: true });
    const rows = ['img_file_name\tobject_id\tobject_annotation_status\tobject_annotation_category'];
    for (const [i, img] of fixtureImages().filter((f) => f.label in LAB).entries()) {
      writeFileSync(path.join(dir, `o${i}.jpg`), img.bytes);
      rows.push(`o${i}.jpg\to${i}\tvalidated\t${LAB[img.label]}`);
    }
    writeFileSync(path.join(dir, 'ecotaxa_lab.tsv'), rows.join('\n') + '\n');
    const mapFile = path.join(work, 'map.tsv');
    writeFileSync(mapFile, 'Acantharea\tacantharia_protist\nChaetognatha\tchaetognath_other\n');
    const ecotaxa = { statuses: ['validated'], minPerClass: 1, categoryMap: await readCategoryMap(mapFile) };
    const lines: string[] = [];
    const child = await runTraining({ ...base, data: dir, ecotaxa, member: 'lab', version: 'c', epochs: 1, from: parent.dir, log: (l) => lines.push(l) });
    expect(child.meta.classes).toEqual(['Oscillatoriales', 'acantharia_protist', 'chaetognath_other', 'detritus_other']);
    expect(child.meta.training.head).toEqual({ carried: ['acantharia_protist', 'chaetognath_other', 'detritus_other'], fresh: ['Oscillatoriales'] });
    expect(lines).toContain('new classifier: 3 classes start from the parent\'s rows, 1 new (Oscillatoriales)');
  });
});
