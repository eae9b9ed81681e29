// Head fine-tuning on the features the frozen network gives on ONNX Runtime (finetune.layers
// "head"), on real fixture images: a member trained here gets a new version whose classifier
// learnt the labelled class and whose model.onnx and model.json agree; a member imported as
// model.onnx alone (test/fixtures/onnx/tiny-pytorch.onnx, written by PyTorch's exporter) gets a
// new model.onnx with its classifier's weights replaced, grown for a new class.
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnsembleFile, MemberMeta } from '../../src/classify/meta.js';
import { folderIO, readMeta, verifyChecksums } from '../../src/classify/model-files.js';
import { findClassifier } from '../../src/classify/onnx-graph.js';
import { convertVersion } from '../../src/classify/onnx-convert.js';
import { importOnnx } from '../../src/classify/onnx-import.js';
import { NATIVE_IO, OnnxSession, startOnnxRuntime } from '../../src/classify/onnx-runtime.js';
import { defaults } from '../../src/config/config.js';
import { initBackend } from '../../src/engine/backend.js';
import type { LabelledImage } from '../../src/learn/dataset.js';
import { logitsHead } from '../../src/finetune/head.js';
import { jobSettings, runFinetuneJob, type FinetuneJob, type JobLabel } from '../../src/finetune/job.js';
import { loadImageTable, tableRows } from '../../src/learn/image-cache.js';
import { fixtureImages } from '../helpers/images.js';
import { maxAbsDiff } from '../onnx/helpers.js';
import { makeFolder, saveTinyMember, trainBase } from './helpers.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/ndsb');
const ONNX_FIXTURE = path.resolve(import.meta.dirname, '../fixtures/onnx');
const images = fixtureImages();
const classesOf = (list: string[]) => images.filter((i) => list.includes(i.label));
const labels = (cls: string): JobLabel[] => images.filter((i) => i.label === cls).map((i) => ({ sha256: i.sha256, label: i.label, file: path.join(FIXTURES, i.label, i.name) }));
const items = (list: JobLabel[]): LabelledImage[] => list.map((l, n) => ({ file: l.file, rel: `${n}/${path.basename(l.file)}`, label: l.label, bytes: 0 }));

let tmp = '';

/** A member version as `plankwatch train` leaves one: model.json, weights and model.onnx, with checksums. */
async function tinyMember(modelsDir: string, classes: string[]): Promise<EnsembleFile> {
  const ensemble = await saveTinyMember(modelsDir, classes);
  await convertVersion(path.join(modelsDir, 'tiny', 'v1'));
  return ensemble;
}

function job(modelsDir: string, ensemble: EnsembleFile, train: JobLabel[], over: Partial<FinetuneJob> = {}): FinetuneJob {
  return {
    runId: 1,
    modelsDir,
    ensemble,
    version: 'ft1',
    train,
    evalLabels: labels('detritus_other'),
    evalData: null,
    referenceData: null,
    replayData: FIXTURES,
    seed: 5,
    ...jobSettings({ ...defaults().finetune, backend: 'wasm', niceness: 0, maxMinutes: 0 }),
    replayPerClass: 4,
    epochs: 8,
    headEpochs: 8,
    batchSize: 8,
    learningRate: 0.01,
    ...over,
  };
}

/** Probabilities of a member version's model.onnx on labelled images, as the daemon runs it. */
async function onnxProbs(dir: string, list: JobLabel[]): Promise<{ meta: MemberMeta; probs: Float32Array }> {
  const meta = await readMeta(dir);
  const table = await loadImageTable(items(list), meta.input.size, meta.preprocessing, { cache: false });
  const session = await OnnxSession.create(await readFile(path.join(dir, 'model.onnx')), `${meta.name}/${meta.version}`, meta.input.size, meta.classes.length, meta.onnx ?? NATIVE_IO);
  try {
    return { meta, probs: await session.run(tableRows(table, 0, list.length), list.length) };
  } finally {
    await session.release();
  }
}

/** Share of the rows whose top class is `cls`. */
function top1(meta: MemberMeta, probs: Float32Array, cls: string): number {
  const k = meta.classes.length;
  const c = meta.classes.indexOf(cls);
  let hits = 0;
  for (let r = 0; r < probs.length / k; r++) {
    const row = probs.subarray(r * k, (r + 1) * k);
    if (row.indexOf(Math.max(...row)) === c) hits++;
  }
  return hits / (probs.length / k);
}

/** Mean probability of `cls` over the rows. */
function meanOf(meta: MemberMeta, probs: Float32Array, cls: string): number {
  const k = meta.classes.length;
  const c = meta.classes.indexOf(cls);
  let sum = 0;
  for (let r = 0; r < probs.length / k; r++) sum += probs[r * k + c]!;
  return sum / (probs.length / k);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-head-features-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  await initBackend('wasm');
  await startOnnxRuntime({ providers: 'cpu', threads: 1 });
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

describe('head fine-tuning on ONNX features, member trained here', () => {
  const known = ['acantharia_protist', 'chaetognath_other', 'copepod_cyclopoid_oithona_eggs', 'detritus_other', 'hydromedusae_solmaris', 'protist_other', 'trichodesmium_puff'];

  it('learns the labelled class; model.onnx and model.json of the new version agree on real images', async () => {
    const modelsDir = path.join(tmp, 'tfjs');
    const ensemble = await tinyMember(modelsDir, known);
    const train = labels('chaetognath_other');
    const before = await onnxProbs(path.join(modelsDir, 'tiny', 'v1'), train);
    const logs: string[] = [];
    const result = await runFinetuneJob(job(modelsDir, ensemble, train, { keepOldClasses: false }), undefined, (l) => logs.push(l));
    const dir = path.join(modelsDir, 'tiny', 'ft1');
    const after = await onnxProbs(dir, train);
    const meta = after.meta;
    expect(meta.training.finetune).toMatchObject({ backend: 'onnxruntime features', featureViews: 4, epochs: 8 });
    expect(logs.join('\n')).toMatch(/features of \d+ images x 4 view\(s\)/);
    // The labelled class: the top class of none of its images before, of nearly all after.
    expect(top1(before.meta, before.probs, 'chaetognath_other')).toBe(0);
    expect(top1(meta, after.probs, 'chaetognath_other')).toBeGreaterThanOrEqual(0.75);
    expect(meanOf(meta, after.probs, 'chaetognath_other')).toBeGreaterThan(meanOf(before.meta, before.probs, 'chaetognath_other') + 0.05);
    expect(readdirSync(dir).sort()).toEqual(['meta.json', 'model.json', 'model.onnx', 'weights.bin']);
    expect(await verifyChecksums(dir, meta)).toEqual([]);
    expect(Object.keys(meta.checksums!).sort()).toEqual(['model.json', 'model.onnx', 'weights.bin']);

    // Its model.json (TensorFlow.js) gives what its model.onnx gives, on every fixture image.
    const all = classesOf([...known, 'appendicularian_s_shape']).map((i) => ({ sha256: i.sha256, label: i.label, file: path.join(FIXTURES, i.label, i.name) }));
    const { probs: onnx } = await onnxProbs(dir, all);
    const model = await tfl.loadLayersModel(folderIO(dir));
    const table = await loadImageTable(items(all), 32, meta.preprocessing, { cache: false });
    const tfjs = tf.tidy(() => (model.predict(tf.tensor4d(tableRows(table, 0, all.length), [all.length, 32, 32, 1])) as tf.Tensor).dataSync() as Float32Array);
    model.dispose();
    expect(maxAbsDiff(onnx, tfjs)).toBeLessThan(1e-4);
    // The gate's figures: the candidate scored on the evaluation images by the features too.
    expect(result.evaluation.count).toBe(12);
    expect(result.members[0]!.epochs).toBe(8);
  }, 120_000);

  it('grows the head for a new class, keeping the old classes\' columns', async () => {
    // A member that learnt the old classes (its features tell them apart), as one from the ship.
    const modelsDir = path.join(tmp, 'tfjs-new');
    const data = await makeFolder(path.join(tmp, 'known'), Object.fromEntries(known.map((c) => [c, labels(c).map((l) => l.file)])));
    const ensemble = await trainBase({ data, modelsDir, member: 'tiny', version: 'v1', epochs: 15, seed: 1 });
    const train = labels('appendicularian_s_shape');
    await runFinetuneJob(job(modelsDir, ensemble, train, { learningRate: 0.05, headEpochs: 15, newClassFalsePositive: 0 }));
    const dir = path.join(modelsDir, 'tiny', 'ft1');
    const { meta, probs } = await onnxProbs(dir, train);
    expect(meta.classes).toEqual([...known, 'appendicularian_s_shape']);
    expect(top1(meta, probs, 'appendicularian_s_shape')).toBeGreaterThanOrEqual(0.4);
    const parentModel = await tfl.loadLayersModel(folderIO(path.join(modelsDir, 'tiny', 'v1')));
    const parent = logitsHead(parentModel);
    parentModel.dispose();
    const child = findClassifier(await readFile(path.join(dir, 'model.onnx')), NATIVE_IO, 'ft1');
    expect(child.units).toBe(parent.units + 1);
    for (let i = 0; i < child.inputs; i++) for (let j = 0; j < parent.units; j++) expect(child.weights[i * child.units + j]).toBe(parent.weights[i * parent.units + j]);
    expect(Array.from(child.bias.subarray(0, parent.units))).toEqual(Array.from(parent.bias));
  }, 120_000);
});

describe('head fine-tuning on ONNX features, member imported as model.onnx alone', () => {
  let modelsDir = '';
  let ensemble: EnsembleFile;
  const parentDir = () => path.join(modelsDir, 'torch', 'v1');

  beforeAll(async () => {
    modelsDir = path.join(tmp, 'imported');
    await importOnnx({
      file: path.join(ONNX_FIXTURE, 'tiny-pytorch.onnx'),
      classesFile: path.join(ONNX_FIXTURE, 'classes.txt'),
      member: 'torch',
      version: 'v1',
      modelsDir,
      mean: 0.5,
      std: 0.25,
      background: 255,
      invert: true,
      noUpscale: false,
      architecture: 'tiny CNN, PyTorch',
      command: 'plankwatch models import (test)',
    });
    ensemble = { version: 'E1', voting: 'soft', members: [{ name: 'torch', version: 'v1' }] };
  });

  it('learns the labelled class: a new model.onnx, the same graph with other classifier weights', async () => {
    const train = labels('chaetognath_other');
    const before = await onnxProbs(parentDir(), train);
    const result = await runFinetuneJob(job(modelsDir, ensemble, train, { version: 'ft1', keepOldClasses: false, learningRate: 0.05, headEpochs: 15 }));
    const dir = path.join(modelsDir, 'torch', 'ft1');
    expect(readdirSync(dir).sort()).toEqual(['meta.json', 'model.onnx']);
    const after = await onnxProbs(dir, train);
    expect(after.meta.onnx).toEqual(before.meta.onnx);
    expect(after.meta.classes).toEqual(before.meta.classes);
    expect(after.meta.parent).toBe('torch/v1');
    expect(after.meta.training.importedFrom).toEqual(before.meta.training.importedFrom);
    expect(await verifyChecksums(dir, after.meta)).toEqual([]);
    expect(top1(before.meta, before.probs, 'chaetognath_other')).toBe(0);
    expect(top1(after.meta, after.probs, 'chaetognath_other')).toBeGreaterThanOrEqual(0.75);
    expect(meanOf(after.meta, after.probs, 'chaetognath_other')).toBeGreaterThan(meanOf(before.meta, before.probs, 'chaetognath_other') + 0.05);
    // The gate's "before" is what the imported model gives on the evaluation images.
    const evalBefore = await onnxProbs(parentDir(), labels('detritus_other'));
    expect(result.evaluation.before.accuracy).toBe(top1(evalBefore.meta, evalBefore.probs, 'detritus_other'));
    // Only the classifier changed: the body's weights are those PyTorch wrote.
    const parent = findClassifier(await readFile(path.join(parentDir(), 'model.onnx')), before.meta.onnx!, 'v1');
    const child = findClassifier(await readFile(path.join(dir, 'model.onnx')), after.meta.onnx!, 'ft1');
    expect(child.features).toBe(parent.features);
    expect(maxAbsDiff(child.weights, parent.weights)).toBeGreaterThan(1e-3);
  }, 120_000);

  it('grows its classifier for a new class; the daemon\'s session reads it', async () => {
    const train = labels('trichodesmium_puff');
    await runFinetuneJob(job(modelsDir, ensemble, train, { version: 'ft2' }));
    const dir = path.join(modelsDir, 'torch', 'ft2');
    const { meta, probs } = await onnxProbs(dir, train);
    expect(meta.classes).toEqual([...(await readMeta(parentDir())).classes, 'trichodesmium_puff']);
    // The session the daemon makes reads the grown output ([batch, 6]); the fixture's body is
    // untrained (its eight features tell little apart), so learning is checked above, not here.
    expect(probs.length).toBe(train.length * 6);
    const parent = findClassifier(await readFile(path.join(parentDir(), 'model.onnx')), meta.onnx!, 'v1');
    const child = findClassifier(await readFile(path.join(dir, 'model.onnx')), meta.onnx!, 'ft2');
    expect([child.inputs, child.units]).toEqual([parent.inputs, parent.units + 1]);
    for (let i = 0; i < child.inputs; i++) for (let j = 0; j < parent.units; j++) expect(child.weights[i * child.units + j]).toBeCloseTo(parent.weights[i * parent.units + j]!, 6);
    expect(Array.from(child.bias.subarray(0, parent.units))).toEqual(Array.from(parent.bias));
  }, 120_000);

  it('refuses finetune.layers "top" or "all" by name: the member has no network to train but its head', async () => {
    await expect(runFinetuneJob(job(modelsDir, ensemble, labels('chaetognath_other'), { version: 'ft3', layers: 'top' }))).rejects.toMatchObject({
      code: 'PW_E_FINETUNE_FAILED',
      message: expect.stringMatching(/torch\/v1 was imported as model\.onnx alone: only its head can be fine-tuned \(finetune\.layers "head"/),
    });
    expect(existsSync(path.join(modelsDir, 'torch', 'ft3'))).toBe(false);
  });
});
