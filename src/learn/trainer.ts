// The training loop: seeded batches with online augmentation, class-weighted cross-entropy,
// Adam with a cosine learning-rate schedule, validation each epoch, checkpoints, --resume,
// early stopping on validation log-loss, and the best epoch's weights kept.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createAdam } from '../engine/adam.js';
import * as tfl from '@tensorflow/tfjs-layers';
import { endEpoch, finishRun, loadBest, openAverage, loadCheckpoint, stopWithinEpoch, type CheckpointState, type EpochEnd } from './checkpoint.js';
import type { AugmentOptions } from './augment.js';
import type { MixOptions } from './mix.js';
import { epochBatches, newBatch } from './batch.js';
import { logitsModel } from './architectures.js';
import { useFastTraining } from '../engine/fast-training.js';
import type { AverageReport, WeightAverage } from './weight-average.js';
import { tableRows, type ImageTable } from './image-cache.js';
import { mulberry32, deriveSeed } from './random.js';
import type { Metrics } from './metrics.js';
import { tieOptimizer, type RotationTies } from '../engine/rotation-ties.js';
import { headVariables, scheduledRate, type RunClock, type ScheduleConfig } from './schedule.js';

export { cosineRate, headVariables, scheduledRate, type RunClock } from './schedule.js';
export { epochDraws } from './batch.js';

export type ClassWeighting = 'balanced' | 'sqrt' | 'none';

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Final learning rate as a fraction of the initial one (cosine schedule). */
  finalLearningRateFraction: number;
  weightDecay: number;
  seed: number;
  classWeights: ClassWeighting;
  augment: AugmentOptions;
  /** Mix each batch's images in pairs (mixup or CutMix; absent or kind none: no mixing). */
  mix?: MixOptions;
  /** Stop when validation log-loss has not improved for this many epochs (0: never). */
  patience: number;
  /** Stop (keeping the best epoch) after this many minutes of training (0: no limit). */
  maxMinutes: number;
  /** Prepared value of the background (0 for inverted images), used to fill after rotation. */
  fill: number;
  /** The command line of this invocation, kept in the checkpoint's history across --resume. */
  command?: string;
  /**
   * Average the weights of every epoch from this one (1-based) on, and return the average (its
   * batch norms measured again on training images) when its validation log-loss beats every
   * epoch's (0 or absent: no averaging).
   */
  averageFrom?: number;
  /**
   * Knowledge distillation: each image's target is (1 − distill) × its label + distill × the
   * teacher's row of `TrainData.train.targets` (0 or absent: the label alone).
   */
  distill?: number;
  /** Weights tied for invariance to quarter turns (a pw-p4 network): kept tied through every step. */
  ties?: RotationTies;
  /**
   * Head-first (the transfer recipe): the first this many epochs train only the layers outside
   * the convolution blocks (the dense layers and the classifier), at `headLearningRate`, before
   * every layer learns. 0 or absent: every trainable layer from the start.
   */
  headEpochs?: number;
  /** The learning rate of the head-only epochs (default: learningRate). */
  headLearningRate?: number;
  /** Linear warm-up of the learning rate over this many epochs after the head-only ones (0 or absent: none). */
  warmupEpochs?: number;
  /**
   * With maxMinutes: the cosine decay after the head-only epochs follows the clock, ending as the
   * time budget does (where the time limit stops the run), not the number of epochs (at most
   * `epochs`, as many as the time allows).
   */
  fitToTime?: boolean;
}

export interface TrainData {
  /** `targets`: a teacher's probabilities, one row per training image (see `distill`). */
  train: { table: ImageTable; labels: Int32Array; targets?: Float32Array };
  validation: { table: ImageTable; labels: Int32Array } | null;
  numClasses: number;
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  learningRate: number;
  imagesPerSecond: number;
  seconds: number;
  validation?: Metrics;
}

export interface ProgressEvent {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

/** Running totals of one epoch: what the progress events and the epoch report are made of. */
export interface EpochTally {
  /** 0-based epoch. */
  epoch: number;
  batches: number;
  lossSum: number;
  correct: number;
  seen: number;
  /** performance.now() when the epoch began. */
  startedMs: number;
}

/** The progress event after `batch` (0-based) batches of `batchSize` images. */
export function progressEvent(config: Pick<TrainConfig, 'epochs'>, t: EpochTally, batch: number, batchSize: number): ProgressEvent {
  const rate = t.seen / ((performance.now() - t.startedMs) / 1000);
  return {
    epoch: t.epoch + 1,
    epochs: config.epochs,
    batch: batch + 1,
    batches: t.batches,
    loss: t.lossSum / t.seen,
    accuracy: t.correct / t.seen,
    imagesPerSecond: rate,
    etaSeconds: ((t.batches - batch - 1) * batchSize) / rate,
  };
}

/** The report of a finished epoch, before validation. */
export function epochReport(config: ScheduleConfig, t: EpochTally, clock?: RunClock): EpochReport {
  const seconds = (performance.now() - t.startedMs) / 1000;
  return {
    epoch: t.epoch + 1,
    trainLoss: t.lossSum / Math.max(1, t.seen),
    trainAccuracy: t.correct / Math.max(1, t.seen),
    learningRate: scheduledRate(config, t.epoch, t.batches - 1, t.batches, clock),
    imagesPerSecond: t.seen / seconds,
    seconds,
  };
}

export interface TrainResult {
  /** Every invocation that contributed (the first, then each --resume). */
  commands: string[];
  epochs: EpochReport[];
  bestEpoch: number;
  stoppedEarly: boolean;
  reason: string;
  /** The weight average's span and validation, when the run averaged (`averageFrom`). */
  average?: AverageReport;
}

export interface TrainHooks {
  onProgress?: (e: ProgressEvent) => void;
  onEpoch?: (e: EpochReport) => void;
  /** Folder for checkpoints (model + optimizer + state); enables --resume. */
  checkpointDir?: string;
  /**
   * Checked after every batch: true ends the run there, as the time limit does (the partial
   * epoch is validated and checkpointed, and the best epoch so far is what the run returns).
   */
  stopRequested?: () => boolean;
  resume?: boolean;
}

/** Per-class loss weights, normalised so that the mean weight over training images is 1. */
export function classWeights(labels: Int32Array, numClasses: number, rule: ClassWeighting): Float32Array {
  const counts = new Float64Array(numClasses);
  for (const l of labels) counts[l]!++;
  const w = new Float32Array(numClasses);
  for (let c = 0; c < numClasses; c++) {
    const n = counts[c]!;
    w[c] = n === 0 ? 0 : rule === 'none' ? 1 : rule === 'sqrt' ? 1 / Math.sqrt(n) : 1 / n;
  }
  let mean = 0;
  for (const l of labels) mean += w[l]!;
  mean /= labels.length;
  for (let c = 0; c < numClasses; c++) w[c] = w[c]! / mean;
  return w;
}

/** Adam keeps its rate in a protected field; the schedule sets it before each step. */
export function setLearningRate(optimizer: tf.Optimizer, rate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = rate;
}

/** Run `fn` with Math.random replaced by a seeded generator (tfjs dropout draws its masks from it). */
export function withSeededMathRandom<T>(seed: number, fn: () => T): T {
  const original = Math.random;
  Math.random = mulberry32(seed);
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}

/** What predictTable runs: a layers model, or its folded inference form. */
export interface Predictor {
  predict(x: tf.Tensor4D): tf.Tensor | tf.Tensor[];
}

/** Probabilities for every image of a table, in batches (no augmentation). */
export function predictTable(model: Predictor, table: ImageTable, batchSize = 64, transform?: (x: tf.Tensor4D) => tf.Tensor4D): Float32Array {
  const n = table.rels.length;
  const s = table.size;
  let out = new Float32Array(0);
  let offset = 0;
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const probs = tf.tidy(() => {
      let x = tf.tensor4d(tableRows(table, start, count), [count, s, s, table.channels ?? 1]);
      if (transform) x = transform(x);
      return (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
    });
    if (start === 0) out = new Float32Array((n * probs.length) / count);
    out.set(probs, offset);
    offset += probs.length;
  }
  return out;
}

/** What a run holds before its first batch: the same for both trainers. */
export interface RunSetup {
  /** Loss weight of each class (classWeights). */
  weights: Float32Array;
  /** The run's one optimizer, tied when the network's weights are (`config.ties`). */
  optimizer: tf.AdamOptimizer;
  /** Whole batches per epoch (a last partial batch is left out). */
  batches: number;
  /** Fresh, or the checkpoint's on --resume; this invocation's command is added to its list. */
  state: CheckpointState;
  /** The best epoch's weights so far (from the checkpoint on --resume). */
  bestWeights: tf.Tensor[] | null;
  /** The running weight average, when the run averages. */
  average: WeightAverage | undefined;
}

/**
 * The setup both trainers share: class weights, the Adam optimizer, and the run's state, loaded
 * into `model` and the optimizer from `hooks.checkpointDir` on --resume.
 */
export async function setUpRun(model: tfl.LayersModel, data: TrainData, config: TrainConfig, hooks: TrainHooks): Promise<RunSetup> {
  const { labels } = data.train;
  const weights = classWeights(labels, data.numClasses, config.classWeights);
  const optimizer = createAdam(config.learningRate);
  if (config.ties) tieOptimizer(optimizer, config.ties);
  const batches = Math.floor(labels.length / config.batchSize);
  let state: CheckpointState = { epoch: 0, bestEpoch: -1, bestLoss: Infinity, sinceBest: 0, history: [], elapsedSeconds: 0 };
  let bestWeights: tf.Tensor[] | null = null;
  if (hooks.resume && hooks.checkpointDir && existsSync(path.join(hooks.checkpointDir, 'state.json'))) {
    state = await loadCheckpoint(model, optimizer, hooks.checkpointDir);
    bestWeights = await loadBest(model, hooks.checkpointDir);
  }
  const average = await openAverage(config.averageFrom, hooks, state);
  state.commands = [...(state.commands ?? []), ...(config.command ? [config.command] : [])];
  return { weights, optimizer, batches, state, bestWeights, average };
}

/**
 * Train `model` in place. On return the model holds the best epoch's weights (lowest validation
 * log-loss, or the last epoch without validation data).
 */
export async function train(model: tfl.LayersModel, data: TrainData, config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const { table } = data.train;
  const s = table.size;
  const lm = logitsModel(model);
  const restoreBatchNorm = useFastTraining(model);
  const setup = await setUpRun(model, data, config, hooks);
  const { weights, optimizer, batches, state, average } = setup;
  let bestWeights = setup.bestWeights;
  const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // Head-first: the head's own optimizer for its epochs (Adam keeps its moments by position in the list it is given).
  const headEpochs = config.headEpochs ?? 0;
  const head = headEpochs > 0 ? headVariables(model).filter((v) => trainable.includes(v)) : [];
  const headOptimizer = head.length > 0 ? createAdam(config.headLearningRate ?? config.learningRate) : null;
  if (headOptimizer && config.ties) tieOptimizer(headOptimizer, config.ties);

  const started = performance.now() - state.elapsedSeconds * 1000;
  // The schedule's clock: the decay runs from the end of the head-only epochs, as recorded in the
  // checkpoint, so that a resumed run goes on with the schedule it was on (a checkpoint written
  // before the field existed: from the resumed run's start, as before).
  const clock = (): RunClock => ({ elapsedSeconds: (performance.now() - started) / 1000, headEndSeconds });
  let headEndSeconds: number | null = state.epoch >= headEpochs ? (state.headEndSeconds ?? (state.epoch === 0 ? 0 : state.elapsedSeconds)) : null;
  const validation = data.validation;
  const end: EpochEnd = {
    state, config, model, optimizer, hooks, started, average,
    validation: validation && { labels: validation.labels, numClasses: data.numClasses, predict: () => predictTable(model, validation.table) },
  };
  let stop: string | null = null;
  const ch = table.channels ?? 1;
  const batch = newBatch(config.batchSize, s * s * ch, data.numClasses);

  for (let epoch = state.epoch; epoch < config.epochs; epoch++) {
    const draws = epochBatches(data, config, weights, epoch);
    const epochStart = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    const headOnly = headOptimizer !== null && epoch < headEpochs;
    if (epoch >= headEpochs) state.headEndSeconds = headEndSeconds ??= (performance.now() - started) / 1000;
    const stepper = headOnly ? headOptimizer : optimizer;
    const variables = headOnly ? head : trainable;
    for (let b = 0; b < batches; b++) {
      const lr = scheduledRate(config, epoch, b, batches, clock());
      setLearningRate(stepper, lr);
      draws.fill(b, batch);
      const [loss, hits] = withSeededMathRandom(deriveSeed(config.seed, 'dropout', epoch, b), () =>
        tf.tidy(() => {
          const x = tf.tensor4d(batch.x, [config.batchSize, s, s, ch]);
          const y = tf.tensor2d(batch.targets, [config.batchSize, data.numClasses]);
          const w = tf.tensor1d(batch.lossWeights);
          let predicted: tf.Tensor | null = null;
          const lossTensor = stepper.minimize(
            () => {
              const logits = lm.apply(x, { training: true }) as tf.Tensor2D;
              predicted = tf.keep(tf.argMax(logits, 1));
              const ce = tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1));
              let l = tf.div(tf.sum(tf.mul(ce, w)), config.batchSize) as tf.Scalar;
              if (config.weightDecay > 0) {
                const decay = tf.addN(trainable.filter((v) => v.shape.length > 1).map((v) => tf.sum(tf.square(v))));
                l = tf.add(l, tf.mul(decay, config.weightDecay / 2)) as tf.Scalar;
              }
              return l;
            },
            true,
            variables,
          )!;
          const hitsTensor = tf.sum(tf.cast(tf.equal(predicted!, tf.tensor1d(batch.labels, 'int32')), 'int32'));
          (predicted as tf.Tensor | null)?.dispose();
          return [lossTensor.dataSync()[0]!, hitsTensor.dataSync()[0]!];
        }),
      );
      lossSum += loss * config.batchSize;
      correct += hits;
      seen += config.batchSize;
      hooks.onProgress?.(progressEvent(config, { epoch, batches, lossSum, correct, seen, startedMs: epochStart }, b, config.batchSize));
      // A batch is synchronous: let signal handlers (a stop request) run between batches.
      await new Promise((resolve) => setImmediate(resolve));
      if (stopWithinEpoch(end)) break;
    }
    const report = epochReport(config, { epoch, batches, lossSum, correct, seen, startedMs: epochStart }, clock());
    const ended = await endEpoch(end, report, bestWeights);
    bestWeights = ended.best;
    stop = ended.stop;
    if (stop) break;
  }
  headOptimizer?.dispose();
  restoreBatchNorm();
  return finishRun(end, data, bestWeights, stop);
}
