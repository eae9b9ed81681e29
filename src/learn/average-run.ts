// `plankwatch average`: a new version of a member whose weights are the (weighted) mean of other
// versions of the same network ("model soup", Wortsman et al. 2022; the same idea as stochastic
// weight averaging, across runs). Versions fine-tuned one from another lie in one basin, so their
// mean is a flatter point that tends to generalise and calibrate better than either, at no cost
// at inference. The batch norms' moving statistics are measured again on the split's training
// images, and the result is validated on its held-out images before it is written.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { sameClassList } from '../classify/classes.js';
import type { MemberMeta } from '../classify/meta.js';
import { folderIO, readMeta, writeMeta } from '../classify/model-files.js';
import { writeOnnxBeside } from '../classify/onnx-export.js';
import { countMacs, quarterTurnInvariant } from './architectures.js';
import { initBackend, type TrainingBackend } from '../engine/backend.js';
import { loadSplit, readDataset } from './dataset.js';
import { trainedCamera } from '../classify/camera-check.js';
import { isEcoTaxaExport, readEcoTaxaData } from './ecotaxa-data.js';
import { loadImageTable, subTable } from './image-cache.js';
import { computeMetrics, headline, type Metrics } from './metrics.js';
import { rotationTies } from '../engine/rotation-ties.js';
import { predictTable } from './trainer.js';
import { BATCH_NORM_IMAGES, resetBatchNormStatistics } from './weight-average.js';

export interface AverageRunOptions {
  /** Version folders to average (two or more of one member's network). */
  sources: string[];
  /** Weight of each source (default: equal); normalised to sum to 1. */
  weights?: number[];
  data: string;
  modelsDir: string;
  member: string;
  version: string;
  backend: TrainingBackend;
  command: string;
  log?: (line: string) => void;
}

export interface AverageRunResult {
  dir: string;
  meta: MemberMeta;
  /** Each source's own validation metrics, measured in the same run, beside the average's. */
  sources: { id: string; validation: Metrics }[];
  validation: Metrics;
}

/** Why these versions cannot be averaged (null: they can). */
export function incompatibility(metas: MemberMeta[], shapes: string[][]): string | null {
  const [first, ...rest] = metas;
  if (!first || rest.length === 0) return 'average needs at least two model versions.';
  const id = (m: MemberMeta) => `${m.name}/${m.version}`;
  for (const [i, m] of rest.entries()) {
    if (m.architecture !== first.architecture) return `${id(m)} is a ${m.architecture}, ${id(first)} a ${first.architecture}: only versions of one network can be averaged.`;
    if (!sameClassList(m.classes, first.classes)) return `${id(m)} and ${id(first)} have different class lists.`;
    if (m.input.size !== first.input.size || JSON.stringify(m.preprocessing) !== JSON.stringify(first.preprocessing)) return `${id(m)} and ${id(first)} prepare their images differently (input size or preprocessing).`;
    if (m.training.dataFingerprint !== first.training.dataFingerprint) return `${id(m)} and ${id(first)} were trained on different data.`;
    if (shapes[i + 1]!.join(';') !== shapes[0]!.join(';')) return `${id(m)} and ${id(first)} have different weight shapes.`;
  }
  return null;
}

/** The split a version was trained on, as an absolute folder. */
function splitOf(dir: string, meta: MemberMeta): string {
  if (!meta.training.split) throw new Error(`${meta.name}/${meta.version} records no split: without one the average could not be measured on images it never saw.`);
  return path.resolve(dir, meta.training.split);
}

export async function runAverage(options: AverageRunOptions): Promise<AverageRunResult> {
  const log = options.log ?? (() => {});
  const backend = await initBackend(options.backend);
  const metas = await Promise.all(options.sources.map((d) => readMeta(d)));
  const models = await Promise.all(options.sources.map((d) => tfl.loadLayersModel(folderIO(d))));
  try {
    const why = incompatibility(metas, models.map((m) => m.getWeights().map((w) => w.shape.join('x'))));
    if (why) throw new Error(why);
    const splits = new Set(options.sources.map((d, i) => splitOf(d, metas[i]!)));
    if (splits.size > 1) throw new Error(`The versions were trained on different splits (${[...splits].join(', ')}): each would have seen some of the others' held-out images.`);
    const weights = options.weights ?? options.sources.map(() => 1);
    if (weights.length !== options.sources.length || weights.some((w) => !(w >= 0)) || weights.every((w) => w === 0)) {
      throw new Error(`--weights needs one weight of 0 or more per version (${options.sources.length}), not all 0.`);
    }
    const total = weights.reduce((a, b) => a + b, 0);
    const share = weights.map((w) => w / total);
    const dir = path.join(options.modelsDir, options.member, options.version);
    if (existsSync(path.join(dir, 'meta.json'))) throw new Error(`${dir} already holds a model: choose another --version.`);

    const first = metas[0]!;
    // The versions' own data and camera (an EcoTaxa export is read with its default filter).
    const dataset = isEcoTaxaExport(options.data) ? await readEcoTaxaData(options.data, undefined, log) : await readDataset(options.data);
    if (dataset.fingerprint !== first.training.dataFingerprint) throw new Error(`${options.data} is not the data the versions were trained on (fingerprint ${dataset.fingerprint.slice(0, 12)}, theirs ${first.training.dataFingerprint.slice(0, 12)}).`);
    const splitDir = [...splits][0]!;
    const split = await loadSplit(splitDir);
    log(`backend: ${backend.name}; ${split.train.length} training images measure the batch norms, ${split.validation.length} held-out images score the result`);
    const table = await loadImageTable(dataset.items, first.input.size, first.preprocessing, { onProgress: (done, total) => log(`preparing images: ${done}/${total}`), camera: trainedCamera(first), channels: first.input.channels });
    const train = subTable(dataset, table, split.train);
    const held = subTable(dataset, table, split.validation);
    const score = (m: tfl.LayersModel) => computeMetrics(predictTable(m, held.table), held.labels, dataset.classes.length);

    const sources = models.map((m, i) => ({ id: `${metas[i]!.name}/${metas[i]!.version}`, validation: score(m) }));
    for (const s of sources) log(`${s.id}: top1 ${s.validation.top1.toFixed(4)} log-loss ${s.validation.logLoss.toFixed(4)}`);
    const model = models[0]!;
    const mean = model.getWeights().map((_, k) => tf.tidy(() => tf.addN(models.map((m, i) => tf.mul(m.getWeights()[k]!, share[i]!)))));
    model.setWeights(mean);
    tf.dispose(mean);
    // A quarter-turn invariant network keeps its ties: its batch norms are pooled over the turns.
    resetBatchNormStatistics(model, train.table, { ties: quarterTurnInvariant(first.architecture) ? rotationTies(model) : undefined });
    const validation = score(model);
    log(`average: top1 ${validation.top1.toFixed(4)} log-loss ${validation.logLoss.toFixed(4)}`);

    await model.save(folderIO(dir));
    await writeOnnxBeside(dir, `${options.member}/${options.version}`, log);
    const meta: MemberMeta = {
      name: options.member,
      version: options.version,
      classes: first.classes,
      input: first.input,
      preprocessing: first.preprocessing,
      architecture: first.architecture,
      training: {
        command: options.command,
        // Nothing random happens here: the batch norms are measured on evenly spaced training images.
        seed: 0,
        averageOf: sources.map((s, i) => ({ version: s.id, weight: share[i], validation: headline(s.validation) })),
        batchNormImages: Math.min(BATCH_NORM_IMAGES, split.train.length),
        dataFingerprint: dataset.fingerprint,
        split: path.relative(dir, splitDir).split(path.sep).join('/'),
        backend: backend.name,
        multiplyAdds: countMacs(model),
      },
      metrics: { ...headline(validation), evaluatedOn: validation.count, split: 'validation' },
      parent: sources.map((s) => s.id).join(' + '),
      createdAt: new Date().toISOString(),
    };
    return { dir, meta: await writeMeta(dir, meta), sources, validation };
  } finally {
    models.forEach((m) => m.dispose());
  }
}
