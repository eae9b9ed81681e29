// `plankwatch train --workers N` (N > 1): the training run of train-run.ts (data, saved split,
// cached prepared images, model, version folder with meta.json), with the data-parallel trainer.
// meta.json records the worker count beside the command line and seed.
import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import type { MemberMeta } from '../../classify/meta.js';
import { folderIO, readMeta, writeMeta } from '../../classify/model-files.js';
import { DEFAULT_PREPROCESS } from '../../preprocess/prepare.js';
import { architectureInfo, buildModel, countMacs } from '../architectures.js';
import { initBackend } from '../backend.js';
import { readDataset, type Dataset } from '../dataset.js';
import { cacheDir, loadImageTable } from '../image-cache.js';
import { defaultSplitDir, defaultVersion, ensureSplit, subTable, type TrainRunOptions, type TrainRunResult } from '../train-run.js';
import { trainParallel, type ParallelTrainHooks } from './trainer.js';

export interface ParallelRunOptions extends TrainRunOptions {
  workers: number;
  hooks?: ParallelTrainHooks;
}

/**
 * A dataset manifest: the list of a dataset (relative path, label, size) without the images. With
 * the prepared-image cache beside it, a training host trains without the image files; the
 * fingerprint, the split check and the cache key are those of the original folder.
 */
export interface DatasetManifest {
  kind: 'plankwatch-dataset-manifest';
  root: string;
  classes: string[];
  fingerprint: string;
  items: [rel: string, label: string, bytes: number][];
}

export function datasetManifest(dataset: Dataset): DatasetManifest {
  return {
    kind: 'plankwatch-dataset-manifest',
    root: dataset.root,
    classes: dataset.classes,
    fingerprint: dataset.fingerprint,
    items: dataset.items.map((i) => [i.rel, i.label, i.bytes]),
  };
}

export async function writeDatasetManifest(file: string, dataset: Dataset): Promise<void> {
  await writeFile(file, JSON.stringify(datasetManifest(dataset)));
}

/** Read a dataset folder or CSV as readDataset does, or a dataset manifest (a .json file). */
export async function readDatasetOrManifest(source: string): Promise<Dataset> {
  if (source.endsWith('.json') && existsSync(source) && statSync(source).isFile()) {
    const m = JSON.parse(await readFile(source, 'utf8')) as DatasetManifest;
    if (m.kind !== 'plankwatch-dataset-manifest') throw new Error(`${source} is not a dataset manifest.`);
    const root = path.dirname(source);
    return {
      root: m.root,
      classes: m.classes,
      fingerprint: m.fingerprint,
      items: m.items.map(([rel, label, bytes]) => ({ file: path.join(root, rel), rel, label, bytes })),
    };
  }
  return readDataset(source);
}

export async function runParallelTraining(options: ParallelRunOptions): Promise<TrainRunResult> {
  const log = options.log ?? (() => {});
  const backend = await initBackend(options.backend === 'auto' ? 'wasm' : options.backend);
  log(`backend: ${backend.name} (${backend.packageName}), ${options.workers} worker threads`);
  const dataset = await readDatasetOrManifest(options.data);
  log(`data: ${dataset.items.length} images, ${dataset.classes.length} classes, fingerprint ${dataset.fingerprint.slice(0, 12)}`);
  const splitDir = options.split ?? defaultSplitDir(options.modelsDir, dataset, options.seed, options.validationFraction);
  const split = await ensureSplit(dataset, splitDir, options.seed, options.validationFraction);
  log(`split: ${split.train.length} train, ${split.validation.length} validation (${splitDir})`);

  const info = architectureInfo(options.architecture);
  const spec = options.preprocess ?? DEFAULT_PREPROCESS;
  let parent: MemberMeta | null = null;
  let model: tfl.LayersModel;
  let inputSize = info.inputSize;
  if (options.from) {
    if (options.freeze) throw new Error('--freeze is not supported with --workers above 1 yet; train the head with --workers 1.');
    parent = await readMeta(options.from);
    const same = parent.classes.length === dataset.classes.length && parent.classes.every((c, i) => c === dataset.classes[i]);
    if (!same) throw new Error('--from with other classes than the parent is not supported with --workers above 1 yet; use --workers 1.');
    model = await tfl.loadLayersModel(folderIO(options.from));
    inputSize = parent.input.size;
  } else {
    model = buildModel(options.architecture, { numClasses: dataset.classes.length, seed: options.seed });
  }
  const preprocessing = parent?.preprocessing ?? spec;
  const t0 = performance.now();
  const table = await loadImageTable(dataset.items, inputSize, preprocessing, {
    onProgress: (done, total) => log(`preparing images: ${done}/${total}`),
  });
  log(`images ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const trainPart = subTable(dataset, table, split.train);
  const valPart = split.validation.length > 0 ? subTable(dataset, table, split.validation) : null;

  const version = options.version ?? defaultVersion();
  const dir = path.join(options.modelsDir, options.member, version);
  const fill = preprocessing.invert ? 1 - preprocessing.background / 255 : preprocessing.background / 255;
  const result = await trainParallel(
    model,
    { train: trainPart, validation: valPart, numClasses: dataset.classes.length },
    {
      epochs: options.epochs,
      batchSize: options.batchSize,
      learningRate: options.learningRate,
      finalLearningRateFraction: 0.02,
      weightDecay: options.weightDecay,
      seed: options.seed,
      classWeights: options.classWeights,
      augment: options.augment,
      patience: options.patience,
      maxMinutes: options.maxMinutes,
      fill,
      command: options.command,
      workers: options.workers,
    },
    { checkpointDir: path.join(cacheDir(), 'checkpoints', `${options.member}-${version}`), ...options.hooks },
  );
  await model.save(folderIO(dir));
  const best = result.epochs.find((e) => e.epoch === result.bestEpoch) ?? result.epochs[result.epochs.length - 1];
  const v = best?.validation;
  const meta: MemberMeta = {
    name: options.member,
    version,
    classes: dataset.classes,
    input: { size: inputSize, channels: 1 },
    preprocessing,
    architecture: parent?.architecture ?? options.architecture,
    training: {
      command: options.command,
      commandHistory: result.commands,
      seed: options.seed,
      workers: options.workers,
      dataFingerprint: dataset.fingerprint,
      split: path.relative(dir, splitDir).split(path.sep).join('/'),
      epochs: result.epochs.length,
      bestEpoch: result.bestEpoch,
      stopReason: result.reason,
      backend: backend.name,
      batchSize: options.batchSize,
      learningRate: options.learningRate,
      weightDecay: options.weightDecay,
      classWeights: options.classWeights,
      augment: options.augment,
      trainImages: split.train.length,
      validationImages: split.validation.length,
      multiplyAdds: countMacs(model),
      history: result.epochs.map(({ validation, ...e }) => ({ ...e, validation: validation ? { top1: validation.top1, top5: validation.top5, logLoss: validation.logLoss, macroF1: validation.macroF1 } : undefined })),
    },
    metrics: v ? { top1: v.top1, top5: v.top5, logLoss: v.logLoss, macroF1: v.macroF1, evaluatedOn: v.count, split: 'validation' } : {},
    parent: parent ? `${parent.name}/${parent.version}` : null,
    createdAt: new Date().toISOString(),
  };
  const written = await writeMeta(dir, meta);
  model.dispose();
  return { dir, meta: written, result };
}
