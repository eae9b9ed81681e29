// `plankwatch train --workers N` (N > 1): the training run of train-run.ts (data, saved split,
// cached prepared images, model, version folder with meta.json), with the data-parallel trainer.
// meta.json records the worker count beside the command line and seed.
import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readDataset, type Dataset } from '../dataset.js';
import { runTraining, type TrainRunOptions, type TrainRunResult } from '../train-run.js';
import { trainParallel, type ParallelTrainHooks } from './trainer.js';
import { sameClassList } from '../../classify/classes.js';

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

/** The training run of train-run.ts, with the gradients of every batch computed by `workers` threads. */
export function runParallelTraining(options: ParallelRunOptions): Promise<TrainRunResult> {
  const { workers, hooks } = options;
  return runTraining(options, {
    label: `${workers} worker threads`,
    // Every worker runs its own wasm instance; a native backend is already multi-threaded.
    backend: (requested) => (requested === 'auto' ? 'wasm' : requested),
    readData: readDatasetOrManifest,
    check: (o, parent, classes) => {
      if (!parent) return;
      if (o.freeze) throw new Error('--freeze is not supported with --workers above 1 yet; train the head with --workers 1.');
      if ((o.headEpochs ?? 0) > 0) throw new Error('--head-epochs (the transfer recipe\'s head-first start) is not supported with --workers above 1 yet; use --workers 1, or --head-epochs 0.');
      if (!sameClassList(parent.classes, classes)) throw new Error('--from with other classes than the parent is not supported with --workers above 1 yet; use --workers 1.');
    },
    fit: (model, data, config, runHooks) => trainParallel(model, data, { ...config, workers }, { ...runHooks, ...hooks }),
    trainingMeta: { workers },
  });
}
