// The members an evaluation scores: each loaded as the daemon runs it (its model.onnx on ONNX
// Runtime, else the folded TensorFlow.js model), and run over the evaluated images once per view
// any figure needs, with the time each view took.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { remapRows } from '../classify/classes.js';
import { memberViews } from '../classify/ensemble-loader.js';
import { inferenceModel } from '../classify/folded-model.js';
import type { EnsembleFile, MemberMeta } from '../classify/meta.js';
import { folderIO, readMeta } from '../classify/model-files.js';
import { exportOnnx, ONNX_FILE } from '../classify/onnx-export.js';
import { memberIo, OnnxSession, type OnnxRuntimeInfo } from '../classify/onnx-runtime.js';
import { transformBatch as transformPixels } from '../classify/tta.js';
import { meanProbabilities } from '../classify/voting.js';
import type { CameraProfile } from '../preprocess/camera.js';
import { preparedBackground } from '../preprocess/prepare.js';
import { countMacs, quarterTurnInvariant } from './architectures.js';
import type { Dataset, LabelledImage } from './dataset.js';
import { searchViews } from './ensemble-search.js';
import { imageBytes, loadImageTable, subTable, tableRows, type ImageTable } from './image-cache.js';
import { computeMetrics } from './metrics.js';
import type { TtaTransform } from './tta.js';

export interface LoadedMember {
  meta: MemberMeta;
  /**
   * Probabilities of `count` prepared images in the daemon's inference form (its model.onnx on
   * ONNX Runtime, else the folded TensorFlow.js model), so that the ROIs/s reported here are the
   * daemon's.
   */
  predict: (pixels: Float32Array, count: number) => Promise<Float32Array> | Float32Array;
  dispose: () => Promise<void> | void;
  weight: number;
  /** Multiply-adds of one forward pass. */
  macs: number;
  /** The views the daemon averages for this member: its own "tta", else the ensemble's, else none. */
  views: TtaTransform[];
  /** The second view the budget search gives it: a mirror image for a network invariant to quarter turns. */
  secondView: TtaTransform;
  /** Whether the budget search also tries its 45° turn (EvaluateOptions.searchDiagonal). */
  diagonalViews: boolean;
  /** The prepared value of the background, for the corners a diagonal turn brings in. */
  fill: number;
}

/** One member's probabilities on the evaluated images, plain and TTA-averaged, and their time. */
export interface MemberRun {
  plain: Float32Array;
  tta: Float32Array;
  plainSeconds: number;
  ttaSeconds: number;
  /** Averaged over the member's own views (`views`), and the time those took. */
  configured: Float32Array;
  configuredSeconds: number;
  /** Each computed transform's probabilities (the rows above are means of these). */
  byTransform: Map<TtaTransform, Float32Array>;
}

/** Every member of the ensemble file, on ONNX Runtime when `onnx` is running, else on TensorFlow.js. */
export async function loadMembers(ensemble: EnsembleFile, modelsDir: string, onnx: OnnxRuntimeInfo | null, searchDiagonal: boolean): Promise<LoadedMember[]> {
  const members: LoadedMember[] = [];
  for (const m of ensemble.members) {
    const dir = path.join(modelsDir, m.name, m.version);
    const meta = await readMeta(dir);
    // A model imported as model.onnx alone (meta.json "onnx") has no layers model: ONNX Runtime only.
    const onnxOnly = meta.onnx !== undefined && !existsSync(path.join(dir, 'model.json'));
    if (onnxOnly && !onnx) throw new Error(`${meta.name}/${meta.version} was imported as model.onnx alone: evaluate it with --backend auto or onnx.`);
    const layers = onnxOnly ? null : await tfl.loadLayersModel(folderIO(dir));
    members.push({
      meta,
      macs: layers ? countMacs(layers) : Number(meta.training.multiplyAdds) || 0,
      ...(onnx ? await onnxPredictor(dir, meta, layers) : tfjsPredictor(layers!, meta.input.size, meta.input.channels)),
      weight: m.weight ?? 1,
      views: memberViews(ensemble, m),
      secondView: quarterTurnInvariant(meta.architecture) ? 'flipH' : 'rot90',
      diagonalViews: searchDiagonal,
      fill: preparedBackground(meta.preprocessing),
    });
  }
  return members;
}

/**
 * Each member's probabilities on the images, once per view any figure needs: the image itself, the
 * TTA views, the member's own views, and with `searched` the views the budget search tries.
 */
export async function runMembers(
  members: LoadedMember[],
  images: { dataset: Dataset; items: LabelledImage[]; rels: string[]; labels: Int32Array },
  transforms: TtaTransform[],
  options: { camera: CameraProfile; searched: boolean; log: (line: string) => void },
): Promise<MemberRun[]> {
  const { dataset, items, rels, labels } = images;
  const classes = dataset.classes;
  const k = classes.length;
  const perMember: MemberRun[] = [];
  for (const m of members) {
    const size = m.meta.input.size;
    const full = await loadImageTable(items, size, m.meta.preprocessing, { camera: options.camera, channels: m.meta.input.channels });
    const table = subTable({ ...dataset, items }, full, rels).table;
    const warm = { ...table, pixels: table.pixels.subarray(0, imageBytes(table) * Math.min(64, rels.length)), rels: rels.slice(0, Math.min(64, rels.length)) };
    await predictRows(m, warm, 'identity');
    const byTransform = new Map<TtaTransform, Float32Array>();
    const secondsOf = new Map<TtaTransform, number>();
    const searched = options.searched ? searchViews(m).flat() : [];
    for (const t of new Set<TtaTransform>(['identity', ...transforms, ...m.views, ...searched])) {
      const t0 = performance.now();
      const probs = remapRows(await predictRows(m, table, t), m.meta.classes, classes);
      secondsOf.set(t, (performance.now() - t0) / 1000);
      byTransform.set(t, probs);
      options.log(`  ${m.meta.name}/${m.meta.version} ${t}: top1 ${computeMetrics(probs, labels, k).top1.toFixed(4)}`);
    }
    const mean = (views: TtaTransform[]) => meanProbabilities(views.map((t) => byTransform.get(t)!));
    const seconds = (views: TtaTransform[]) => views.reduce((a, t) => a + secondsOf.get(t)!, 0);
    perMember.push({
      plain: byTransform.get('identity')!,
      plainSeconds: secondsOf.get('identity')!,
      tta: mean(transforms),
      ttaSeconds: seconds(transforms),
      configured: mean(m.views),
      configuredSeconds: seconds(m.views),
      byTransform,
    });
  }
  return perMember;
}

/** A member on TensorFlow.js: the folded model (takes ownership of `layers`). */
function tfjsPredictor(layers: tfl.LayersModel, size: number, channels: 1 | 3 = 1): Pick<LoadedMember, 'predict' | 'dispose'> {
  const model = inferenceModel(layers);
  return {
    predict: (pixels, count) => tf.tidy(() => Float32Array.from(model.predict(tf.tensor4d(pixels, [count, size, size, channels])).dataSync() as Float32Array)),
    dispose: () => model.dispose(),
  };
}

/**
 * A member on ONNX Runtime: its model.onnx (checked against meta.json's checksum), or for a
 * version without one, the export of its model.json made here. Disposes `layers`.
 */
async function onnxPredictor(dir: string, meta: MemberMeta, layers: tfl.LayersModel | null): Promise<Pick<LoadedMember, 'predict' | 'dispose'>> {
  const id = `${meta.name}/${meta.version}`;
  let bytes: Uint8Array;
  try {
    const sum = meta.checksums?.[ONNX_FILE];
    if (sum) {
      bytes = await readFile(path.join(dir, ONNX_FILE));
      if (createHash('sha256').update(bytes).digest('hex') !== sum) throw new Error(`${id}: ${path.join(dir, ONNX_FILE)} does not match its checksum in meta.json`);
    } else if (layers) {
      bytes = exportOnnx(layers, { id });
    } else {
      throw new Error(`${id}: meta.json lists no checksum for its model.onnx`);
    }
  } finally {
    layers?.dispose();
  }
  const session = await OnnxSession.create(bytes, id, meta.input.size, meta.classes.length, memberIo(meta));
  return { predict: (pixels, count) => session.run(pixels, count), dispose: () => session.release() };
}

/** One member's probabilities on every image of a table, seen through one view, in batches of 64. */
async function predictRows(m: LoadedMember, table: ImageTable, t: TtaTransform, batchSize = 64): Promise<Float32Array> {
  const n = table.rels.length;
  const k = m.meta.classes.length;
  const out = new Float32Array(n * k);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const pixels = transformPixels(tableRows(table, start, count), table.size, t, m.fill, table.channels ?? 1);
    out.set(await m.predict(pixels, count), start * k);
  }
  return out;
}
