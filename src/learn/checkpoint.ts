// Training checkpoints, shared by the single-thread and the data-parallel trainer so that either
// resumes the other's run: last/ (model folder), optimizer.bin, best.bin, state.json, each written
// under a temporary name and renamed.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { folderIO } from '../classify/model-files.js';
import { computeMetrics } from './metrics.js';
import type { EpochReport, TrainHooks } from './trainer.js';

export interface CheckpointState {
  epoch: number;
  bestEpoch: number;
  bestLoss: number;
  sinceBest: number;
  history: EpochReport[];
  elapsedSeconds: number;
  commands?: string[];
  /** Worker threads of the invocations that wrote this checkpoint (the parallel trainer's own field). */
  workers?: number[];
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
  config: { patience: number; maxMinutes: number };
  model: tfl.LayersModel;
  optimizer: tf.Optimizer;
  hooks: Pick<TrainHooks, 'onEpoch' | 'checkpointDir' | 'stopRequested'>;
  /** performance.now() at the start of this invocation. */
  started: number;
  /** The validation images' labels and a way to get their class probabilities (null: no validation set). */
  validation: { labels: Int32Array; numClasses: number; predict: () => Float32Array | Promise<Float32Array> } | null;
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
  end.hooks.onEpoch?.(report);
  if (end.hooks.checkpointDir) await saveCheckpoint(end.model, end.optimizer, kept, end.state, end.hooks.checkpointDir);
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

export async function saveCheckpoint(model: tfl.LayersModel, optimizer: tf.Optimizer, best: tf.Tensor[] | null, state: CheckpointState, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(folderIO(path.join(dir, 'last')));
  const opt = await optimizer.getWeights();
  await writeTensors(path.join(dir, 'optimizer.bin'), opt.map((o) => o.tensor), opt.map((o) => o.name));
  if (best) await writeTensors(path.join(dir, 'best.bin'), best, best.map((_, i) => String(i)));
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

/** A small self-describing tensor file: JSON header line, then the raw values (the trainer's format). */
async function writeTensors(file: string, tensors: tf.Tensor[], names: string[]): Promise<void> {
  const header = tensors.map((t, i) => ({ name: names[i], shape: t.shape, dtype: t.dtype }));
  const datas = tensors.map((t) => Buffer.from((t.dataSync() as Float32Array).slice().buffer));
  await writeFile(`${file}.tmp`, Buffer.concat([Buffer.from(JSON.stringify(header) + '\n'), ...datas]));
  await rename(`${file}.tmp`, file);
}

async function readTensors(file: string): Promise<{ tensors: tf.Tensor[]; names: string[] }> {
  const buf = await readFile(file);
  const nl = buf.indexOf(10);
  const header = JSON.parse(buf.subarray(0, nl).toString('utf8')) as { name: string; shape: number[]; dtype: 'float32' | 'int32' }[];
  let offset = nl + 1;
  const tensors = header.map((h) => {
    const size = h.shape.reduce((a, b) => a * b, 1);
    const bytes = buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + offset + size * 4);
    offset += size * 4;
    return tf.tensor(h.dtype === 'int32' ? new Int32Array(bytes) : new Float32Array(bytes), h.shape, h.dtype);
  });
  return { tensors, names: header.map((h) => h.name) };
}
