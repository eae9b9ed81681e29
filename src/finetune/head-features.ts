// Head fine-tuning on features (finetune.layers "head"): the frozen body of a member runs once, on
// ONNX Runtime, over the training, replay and evaluation images, giving the penultimate features
// (the classifier's input, a second output added to its model.onnx); the classifier alone (a dense
// layer and a softmax) is then trained on those features (head-trainer.ts), with the trainer's
// loss, Adam and cosine schedule. Nothing runs the body again per epoch.
//
// Augmentation (finetune.augment) is drawn once: each training image's features are taken for a
// few views (as prepared, then seeded rotations and mirrors), and each epoch draws one of them.
//
// Works for members trained here (the new version gets model.json with the new classifier and
// model.onnx exported from it, as before) and for members imported as model.onnx alone (the new
// version gets the same model.onnx with its classifier's weights replaced, grown for new classes).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import type { MemberMeta, OnnxIo } from '../classify/meta.js';
import { folderIO } from '../classify/model-files.js';
import { exportOnnx, ONNX_FILE, writeOnnxBeside } from '../classify/onnx-export.js';
import { FEATURES_OUTPUT, findClassifier, replaceClassifier, withFeaturesOutput } from '../classify/onnx-graph.js';
import { memberIo, OnnxSession, softmaxRows, startOnnxRuntime } from '../classify/onnx-runtime.js';
import { PlankwatchError } from '../errors.js';
import { augmentInto, type AugmentOptions } from '../learn/augment.js';
import type { ImageTable } from '../learn/image-cache.js';
import { tableRows } from '../learn/image-cache.js';
import { deriveSeed, mulberry32 } from '../learn/random.js';
import type { ClassWeighting, ProgressEvent } from '../learn/trainer.js';
import { trainHead } from './head-trainer.js';
import { growHead, growHeadWeights, headProbabilities, keepOldHeadColumns, logitsHead, newClassShifts, setLogitsHead, type HeadWeights } from './head.js';

/** Views of each training image whose features are taken when augmenting (the first as prepared). */
export const FEATURE_VIEWS = 4;
/** ONNX Runtime in the fine-tuning thread: the CPU, every core (the thread's niceness yields them to inference). */
const RUNTIME = { providers: 'cpu', threads: 0 };
/** Images per ONNX Runtime run. */
const RUN_BATCH = 64;

/** Where a member's features come from. */
export interface FeatureSource {
  /** tfjs: the member has model.json (its new version gets one too); onnx: model.onnx alone (imported). */
  kind: 'tfjs' | 'onnx';
  /** model.onnx as the daemon runs it (or, for a version without one, the export of its model.json). */
  onnx: Uint8Array;
  io: OnnxIo;
  /** Its classifier as it is. */
  head: HeadWeights;
}

/**
 * How a member's head is fine-tuned on features: its model.onnx and classifier. For a member with
 * model.json whose network does not export, or whose model.onnx does not end in its "logits"
 * layer, or when ONNX Runtime does not start, returns the reason instead (it is then trained with
 * TensorFlow.js, as before). Throws PW_E_FINETUNE_FAILED for a member imported as model.onnx
 * alone whose classifier cannot be found or when ONNX Runtime does not start.
 */
export async function featureSource(dir: string, meta: MemberMeta, id: string): Promise<FeatureSource | { reason: string }> {
  const io = memberIo(meta);
  const onnxFile = path.join(dir, ONNX_FILE);
  const tfjs = existsSync(path.join(dir, 'model.json'));
  try {
    await startOnnxRuntime(RUNTIME);
  } catch (err) {
    if (!(err instanceof PlankwatchError && err.code === 'PW_E_ONNX_RUNTIME')) throw err;
    if (tfjs) return { reason: sentence(err.detail) };
    throw new PlankwatchError('PW_E_FINETUNE_FAILED', `Member ${id} was imported as model.onnx alone and ONNX Runtime, which fine-tunes its head, did not start: ${err.detail}`, { cause: err });
  }
  if (!tfjs) {
    if (!existsSync(onnxFile)) throw new PlankwatchError('PW_E_FINETUNE_FAILED', `Member ${id}: its folder ${dir} has neither model.json nor ${ONNX_FILE}.`);
    const onnx = await readFile(onnxFile);
    const c = findClassifier(onnx, io, id);
    return { kind: 'onnx', onnx, io, head: { inputs: c.inputs, units: c.units, weights: c.weights, bias: c.bias } };
  }
  const model = await tfl.loadLayersModel(folderIO(dir));
  try {
    let onnx: Uint8Array;
    if (existsSync(onnxFile)) onnx = await readFile(onnxFile);
    else {
      try {
        onnx = exportOnnx(model, { id });
      } catch (err) {
        if (err instanceof PlankwatchError && err.code === 'PW_E_ONNX_EXPORT') return { reason: sentence(err.detail) };
        throw err;
      }
    }
    let c;
    try {
      c = findClassifier(onnx, io, id);
    } catch (err) {
      if (err instanceof PlankwatchError && err.code === 'PW_E_FINETUNE_FAILED') return { reason: sentence(err.detail) };
      throw err;
    }
    // The graph's classifier must be the "logits" layer that the new version's model.json gets.
    const logits = logitsHead(model);
    const same = logits.inputs === c.inputs && logits.units === c.units && c.weights.every((w, i) => Math.abs(w - logits.weights[i]!) <= 1e-6) && c.bias.every((b, i) => Math.abs(b - logits.bias[i]!) <= 1e-6);
    if (!same) return { reason: `the classifier of ${onnxFile} is not the "logits" layer of its model.json` };
    return { kind: 'tfjs', onnx, io, head: c };
  } finally {
    model.dispose();
  }
}

/** A message without its final full stop, to go on in a sentence. */
function sentence(text: string): string {
  return text.replace(/\.+$/, '');
}

/** What a member's training needs: its images, settings and where the new version goes. */
export interface HeadJob {
  id: string;
  member: string;
  meta: MemberMeta;
  /** Folder of the current version, and of the new one. */
  dir: string;
  outDir: string;
  /** Classes of the new version: the member's, then the new ones. */
  classes: string[];
  newClasses: string[];
  /** Training images: label rows then replay rows, each once. */
  labels: { table: ImageTable; classes: Int32Array };
  replay: { table: ImageTable; classes: Int32Array };
  /** Label rows count this many times per epoch. */
  repeat: number;
  evalTable: ImageTable;
  settings: {
    runId: number;
    seed: number;
    epochs: number;
    batchSize: number;
    learningRate: number;
    classWeights: ClassWeighting;
    augment: AugmentOptions | null;
    maxMinutes: number;
    keepOldClasses: boolean;
    newClassFalsePositive: number;
  };
}

export interface HeadResult {
  epochs: number;
  finalLoss: number | null;
  /** Probabilities of the evaluation images by the current version and the new one. */
  before: Float32Array;
  after: Float32Array;
  views: number;
  /** How far each new class's bias went down. */
  calibration: number[];
  /** Seconds spent running the body over the images, and training the head. */
  featureSeconds: number;
  trainSeconds: number;
}

/**
 * Fine-tune a member's classifier on its features and write the new version's model files into
 * job.outDir (not meta.json). Throws PW_E_ONNX_RUNTIME when ONNX Runtime cannot start,
 * PW_E_FINETUNE_FAILED when the classifier found in the graph does not give its output.
 */
export async function trainHeadOnFeatures(job: HeadJob, source: FeatureSource, onProgress: (p: ProgressEvent) => void, log: (line: string) => void): Promise<HeadResult> {
  const { id, meta, settings } = job;
  const size = meta.input.size;
  const spec = meta.preprocessing;
  const fill = spec.invert ? 1 - spec.background / 255 : spec.background / 255;
  const t0 = performance.now();
  await startOnnxRuntime(RUNTIME);
  const session = await OnnxSession.create(withFeaturesOutput(source.onnx, source.io, id), id, size, meta.classes.length, source.io);
  const images = joinTables(job.labels.table, job.replay.table);
  const views = settings.augment ? Math.max(1, Math.min(FEATURE_VIEWS, settings.epochs)) : 1;
  const features: Float32Array[] = [];
  let evalProbs: Float32Array;
  let evalFeatures: Float32Array;
  try {
    const [probs, plain] = await runRows(session, images, [source.io.output, FEATURES_OUTPUT], null);
    features.push(plain!);
    checkHead(id, source, probs!, plain!, images.rels.length);
    for (let v = 1; v < views; v++) {
      const rng = mulberry32(deriveSeed(settings.seed, 'feature-view', job.member, settings.runId, v));
      features.push((await runRows(session, images, [FEATURES_OUTPUT], { rng, options: settings.augment!, fill }))[0]!);
    }
    [evalProbs, evalFeatures] = (await runRows(session, job.evalTable, [source.io.output, FEATURES_OUTPUT], null)) as [Float32Array, Float32Array];
  } finally {
    await session.release();
  }
  const before = source.io.outputs === 'logits' ? softmaxRows(evalProbs, meta.classes.length) : evalProbs;
  const featureSeconds = (performance.now() - t0) / 1000;
  log(`${id}: features of ${images.rels.length} images x ${views} view(s) and ${job.evalTable.rels.length} evaluation images on ONNX Runtime in ${featureSeconds.toFixed(1)} s`);

  // The training rows: each label image `repeat` times, then each replay image once.
  const nLabels = job.labels.table.rels.length;
  const nReplay = job.replay.table.rels.length;
  const rows = new Int32Array(nLabels * job.repeat + nReplay);
  const classes = new Int32Array(rows.length);
  let r = 0;
  for (let k = 0; k < job.repeat; k++) {
    for (let i = 0; i < nLabels; i++) {
      rows[r] = i;
      classes[r++] = job.labels.classes[i]!;
    }
  }
  for (let i = 0; i < nReplay; i++) {
    rows[r] = nLabels + i;
    classes[r++] = job.replay.classes[i]!;
  }

  const t1 = performance.now();
  const oldCount = meta.classes.length;
  const head = job.newClasses.length > 0 ? growHeadWeights(source.head, job.newClasses.length, deriveSeed(settings.seed, 'head', job.member)) : copyHead(source.head);
  const trained = trainHead(
    head,
    { features, rows, labels: classes },
    { ...settings, seed: deriveSeed(settings.seed, 'train', job.member, settings.runId), batchSize: Math.max(1, Math.min(settings.batchSize, rows.length)) },
    onProgress,
  );
  if (settings.keepOldClasses && job.newClasses.length > 0) keepOldHeadColumns(head, source.head, oldCount);
  let calibration: number[] = [];
  if (job.newClasses.length > 0 && nReplay > 0 && settings.newClassFalsePositive > 0) {
    const replayFeatures = features[0]!.subarray(nLabels * head.inputs);
    calibration = newClassShifts(headProbabilities(head, replayFeatures, nReplay), head.units, oldCount, settings.newClassFalsePositive, job.replay.classes);
    calibration.forEach((shift, i) => (head.bias[oldCount + i] = head.bias[oldCount + i]! - shift));
  }
  const after = headProbabilities(head, evalFeatures, job.evalTable.rels.length);
  const trainSeconds = (performance.now() - t1) / 1000;

  await writeVersion(job, source, head, log);
  // The written model.onnx must give what the head gave: checked on the first images.
  await checkWritten(job, source.io, head, images, features[0]!);
  return { epochs: trained.epochs, finalLoss: trained.finalLoss, before, after, views, calibration, featureSeconds, trainSeconds };
}

function copyHead(h: HeadWeights): HeadWeights {
  return { inputs: h.inputs, units: h.units, weights: Float32Array.from(h.weights), bias: Float32Array.from(h.bias) };
}

/** Image tables one after the other. */
function joinTables(a: ImageTable, b: ImageTable): ImageTable {
  const pixels = new Uint8Array(a.pixels.length + b.pixels.length);
  pixels.set(a.pixels);
  pixels.set(b.pixels, a.pixels.length);
  return { size: a.size, ...(a.channels === 3 ? { channels: a.channels } : {}), pixels, rels: [...a.rels, ...b.rels] };
}

/** The named outputs for every row of a table, in batches; `view`: augment each image first. */
async function runRows(
  session: OnnxSession,
  table: ImageTable,
  names: string[],
  view: { rng: () => number; options: AugmentOptions; fill: number } | null,
): Promise<Float32Array[]> {
  const n = table.rels.length;
  const channels = table.channels ?? 1;
  const s2 = table.size * table.size * channels;
  const chunks: Float32Array[][] = names.map(() => []);
  for (let start = 0; start < n; start += RUN_BATCH) {
    const count = Math.min(RUN_BATCH, n - start);
    let pixels: Float32Array;
    if (view) {
      pixels = new Float32Array(count * s2);
      for (let i = 0; i < count; i++) {
        const row = start + i;
        augmentInto(table.pixels.subarray(row * s2, (row + 1) * s2), table.size, pixels.subarray(i * s2, (i + 1) * s2), view.rng, view.options, view.fill, channels);
      }
    } else pixels = tableRows(table, start, count);
    const out = await session.outputs(pixels, count, names);
    out.forEach((o, k) => chunks[k]!.push(o));
  }
  return chunks.map((parts) => {
    const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return all;
  });
}

/** The classifier found must give the model's own output from the features (on the first images). */
function checkHead(id: string, source: FeatureSource, output: Float32Array, features: Float32Array, n: number): void {
  const count = Math.min(n, RUN_BATCH);
  if (count === 0) return;
  const k = source.head.units;
  const expected = source.io.outputs === 'logits' ? softmaxRows(output.subarray(0, count * k), k) : output.subarray(0, count * k);
  const actual = headProbabilities(source.head, features.subarray(0, count * source.head.inputs), count);
  let diff = 0;
  for (let i = 0; i < actual.length; i++) diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
  if (!(diff <= 1e-3)) {
    throw new PlankwatchError('PW_E_FINETUNE_FAILED', `Member ${id}: the classifier found in its model.onnx does not give the model's output "${source.io.output}" (differs by ${diff.toExponential(2)}); its head cannot be fine-tuned. Fine-tune it where it was trained and import the result with \`plankwatch models import\`.`);
  }
}

/** The new version's model files: model.json and model.onnx exported from it, or the edited model.onnx. */
async function writeVersion(job: HeadJob, source: FeatureSource, head: HeadWeights, log: (line: string) => void): Promise<void> {
  const newId = `${job.member}/${path.basename(job.outDir)}`;
  if (source.kind === 'tfjs') {
    const current = await tfl.loadLayersModel(folderIO(job.dir));
    const model = job.newClasses.length > 0 ? await growHead(current, job.newClasses.length, 0) : current;
    try {
      setLogitsHead(model, head);
      await model.save(folderIO(job.outDir));
    } finally {
      if (model !== current) model.dispose();
      current.dispose();
    }
    await writeOnnxBeside(job.outDir, newId, log);
    return;
  }
  const bytes = replaceClassifier(source.onnx, source.io, job.id, head.weights, head.bias);
  await mkdir(job.outDir, { recursive: true });
  const file = path.join(job.outDir, ONNX_FILE);
  await writeFile(`${file}.tmp`, bytes);
  await rename(`${file}.tmp`, file);
}

/** The new version's model.onnx, where there is one, gives the trained head's probabilities (1e-4). */
async function checkWritten(job: HeadJob, io: OnnxIo, head: HeadWeights, images: ImageTable, features: Float32Array): Promise<void> {
  const file = path.join(job.outDir, ONNX_FILE);
  if (!existsSync(file)) return;
  const count = Math.min(images.rels.length, RUN_BATCH);
  if (count === 0) return;
  const session = await OnnxSession.create(await readFile(file), job.id, images.size, head.units, io);
  try {
    const probs = await session.run(tableRows(images, 0, count), count);
    const expected = headProbabilities(head, features.subarray(0, count * head.inputs), count);
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(probs[i]! - expected[i]!));
    if (!(diff <= 1e-4)) throw new PlankwatchError('PW_E_FINETUNE_FAILED', `Member ${job.id}: the new ${file} does not give the fine-tuned classifier's probabilities (differs by ${diff.toExponential(2)}).`);
  } finally {
    await session.release();
  }
}
