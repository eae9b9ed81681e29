// Training checkpoints, shared by the single-thread and the data-parallel trainer so that either
// resumes the other's run: last/ (model folder), optimizer.bin, best.bin, average.bin (weight
// averaging), state.json, each written under a temporary name and renamed.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { folderIO } from '../classify/model-files.js';
import { computeMetrics } from './metrics.js';
import type { RotationTies } from '../engine/rotation-ties.js';
import { readTensors, writeTensors } from './tensor-file.js';
import { finishAverage, WeightAverage, type AverageReport, type AverageSpan } from './weight-average.js';
import type { EpochReport, TrainData, TrainHooks, TrainResult } from './trainer.js';

export interface CheckpointState {
  epoch: number;
  bestEpoch: number;
  bestLoss: number;
  sinceBest: number;
  history: EpochReport[];
  elapsedSeconds: number;
  /** Training seconds when the head-only epochs ended (0 without them): where a time-based decay starts, kept across --resume. */
  headEndSeconds?: number;
  commands?: string[];
  /** Worker threads of the invocations that wrote this checkpoint (the parallel trainer's own field). */
  workers?: number[];
  /** The weight average so far (its values are in average.bin). */
  average?: AverageSpan;
}

/**
 * Close an epoch: append its report, and when its score (validation log-loss, else training loss)
 * is the best so far, keep a copy of the weights. Returns the best weights (the new copy or `best`).
 */
export function recordEpoch(state: CheckpointState, report: EpochReport, score: number, model: tfl.LayersModel, best: tf.Tensor[] | null, started: number): tf.Tensor[] | null {
  state.history.push(report);
  state.epoch = report.epoch;
  state.elapsedSeconds = (performance.now() - started) / 1000;
  if (score < state.bestLoss) {
    state.bestLoss = score;
    state.bestEpoch = report.epoch;
    state.sinceBest = 0;
    tf.dispose(best ?? []);
    return model.getWeights().map((w) => tf.clone(w));
  }
  state.sinceBest++;
  return best;
}

/** What both trainers do after the batches of an epoch. */
export interface EpochEnd {
  state: CheckpointState;
  config: { patience: number; maxMinutes: number; averageFrom?: number; ties?: RotationTies };
  model: tfl.LayersModel;
  optimizer: tf.Optimizer;
  hooks: Pick<TrainHooks, 'onEpoch' | 'checkpointDir' | 'stopRequested'>;
  /** performance.now() at the start of this invocation. */
  started: number;
  /** The validation images' labels and a way to get their class probabilities (null: no validation set). */
  validation: { labels: Int32Array; numClasses: number; predict: () => Float32Array | Promise<Float32Array> } | null;
  /** The running weight average, when the run averages (config.averageFrom > 0). */
  average?: WeightAverage;
}

/**
 * Validate, keep the best weights, report, checkpoint, and decide whether to stop. Returns the
 * best weights and the reason to stop (null: go on).
 */
export async function endEpoch(end: EpochEnd, report: EpochReport, best: tf.Tensor[] | null): Promise<{ best: tf.Tensor[] | null; stop: string | null }> {
  let score = report.trainLoss;
  if (end.validation) {
    const { labels, numClasses, predict } = end.validation;
    report.validation = computeMetrics(await predict(), labels, numClasses);
    score = report.validation.logLoss;
  }
  const kept = recordEpoch(end.state, report, score, end.model, best, end.started);
  const from = end.config.averageFrom ?? 0;
  if (end.average && from > 0 && report.epoch >= from) {
    end.average.add(end.model, report.epoch);
    end.state.average = end.average.span;
  }
  end.hooks.onEpoch?.(report);
  if (end.hooks.checkpointDir) await saveCheckpoint(end.model, end.optimizer, kept, end.state, end.hooks.checkpointDir, end.average);
  return { best: kept, stop: end.hooks.stopRequested?.() ? 'stopped on request' : stopReason(end.state, end.config) };
}

/** Checked after every batch: the time limit has passed, or a stop was requested. */
export function stopWithinEpoch(end: EpochEnd): boolean {
  const { maxMinutes } = end.config;
  return (maxMinutes > 0 && (performance.now() - end.started) / 60000 > maxMinutes) || end.hooks.stopRequested?.() === true;
}

/** Why training stops after this epoch (early stopping, time limit), or null to go on. */
export function stopReason(state: CheckpointState, config: { patience: number; maxMinutes: number }): string | null {
  if (config.patience > 0 && state.sinceBest >= config.patience) return `validation log-loss did not improve for ${config.patience} epochs`;
  if (config.maxMinutes > 0 && state.elapsedSeconds / 60 > config.maxMinutes) return `time limit of ${config.maxMinutes} minutes reached`;
  return null;
}

export async function saveCheckpoint(model: tfl.LayersModel, optimizer: tf.Optimizer, best: tf.Tensor[] | null, state: CheckpointState, dir: string, average?: WeightAverage): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(folderIO(path.join(dir, 'last')));
  const opt = await optimizer.getWeights();
  await writeTensors(path.join(dir, 'optimizer.bin'), opt.map((o) => o.tensor), opt.map((o) => o.name));
  if (best) await writeTensors(path.join(dir, 'best.bin'), best, best.map((_, i) => String(i)));
  await average?.save(dir);
  await writeFile(path.join(dir, 'state.json.tmp'), JSON.stringify(state, null, 2));
  await rename(path.join(dir, 'state.json.tmp'), path.join(dir, 'state.json'));
}

export async function loadCheckpoint(model: tfl.LayersModel, optimizer: tf.Optimizer, dir: string): Promise<CheckpointState> {
  const saved = await tfl.loadLayersModel(folderIO(path.join(dir, 'last')));
  model.setWeights(saved.getWeights());
  saved.dispose();
  const { tensors, names } = await readTensors(path.join(dir, 'optimizer.bin'));
  await optimizer.setWeights(tensors.map((tensor, i) => ({ name: names[i]!, tensor })));
  return JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as CheckpointState;
}

export async function loadBest(model: tfl.LayersModel, dir: string): Promise<tf.Tensor[] | null> {
  const file = path.join(dir, 'best.bin');
  if (!existsSync(file)) return null;
  const { tensors } = await readTensors(file);
  if (tensors.length !== model.getWeights().length) {
    tf.dispose(tensors);
    return null;
  }
  return tensors;
}

/** The weight average a run starts with: none without `averageFrom`, the checkpoint's on --resume, else empty. */
export async function openAverage(averageFrom: number | undefined, hooks: Pick<TrainHooks, 'resume' | 'checkpointDir'>, state: CheckpointState): Promise<WeightAverage | undefined> {
  if ((averageFrom ?? 0) <= 0) return undefined;
  return hooks.resume && hooks.checkpointDir ? WeightAverage.load(hooks.checkpointDir, state.average) : WeightAverage.empty();
}

/**
 * After the last epoch: the model gets the weights the run keeps (its average when that beat every
 * epoch, else its best epoch), the optimizer is freed, and the run's result is returned. `stop` is
 * why it ended early (null: it completed all epochs).
 */
export function finishRun(end: EpochEnd, data: TrainData, best: tf.Tensor[] | null, stop: string | null): TrainResult {
  // The weight average, if the run kept one, is validated against the best epoch (finishAverage).
  const validation = data.validation && { ...data.validation, numClasses: data.numClasses };
  const averaged: { best: tf.Tensor[] | null; report?: AverageReport } =
    end.average && end.average.count > 0 ? finishAverage(end.model, end.average, data.train.table, validation, { weights: best, loss: end.state.bestLoss }, end.config.ties) : { best };
  if (averaged.best) {
    end.model.setWeights(averaged.best);
    tf.dispose(averaged.best);
  }
  end.optimizer.dispose();
  const { state } = end;
  return {
    commands: state.commands ?? [],
    epochs: state.history,
    bestEpoch: state.bestEpoch,
    stoppedEarly: stop !== null,
    reason: stop ?? 'completed all epochs',
    ...(averaged.report ? { average: averaged.report } : {}),
  };
}
