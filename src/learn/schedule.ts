// The learning-rate schedule of a training run: cosine decay, the transfer recipe's head-only
// epochs and warm-up, and the number of epochs fitted to a time budget.
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { TrainConfig } from './trainer.js';

export function cosineRate(config: Pick<TrainConfig, 'learningRate' | 'finalLearningRateFraction'>, progress: number): number {
  const f = config.finalLearningRateFraction;
  return config.learningRate * (f + (1 - f) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
}

export type ScheduleConfig = Pick<TrainConfig, 'learningRate' | 'finalLearningRateFraction' | 'epochs' | 'headEpochs' | 'headLearningRate' | 'warmupEpochs'>;

/**
 * The learning rate before batch `b` of `batches` in `epoch` (0-based): the head-only epochs at
 * their own rate, then a linear warm-up and a cosine decay over the remaining epochs. Without
 * head epochs and warm-up, the plain cosine over the whole run.
 */
export function scheduledRate(config: ScheduleConfig, epoch: number, b: number, batches: number): number {
  const head = config.headEpochs ?? 0;
  if (epoch < head) return config.headLearningRate ?? config.learningRate;
  const done = epoch - head + b / batches;
  const rate = cosineRate(config, done / Math.max(1, config.epochs - head));
  const warm = config.warmupEpochs ?? 0;
  return warm > 0 ? rate * Math.min(1, (done + 1 / batches) / warm) : rate;
}

/**
 * Epochs that fit in `maxMinutes` when `done` epochs took `elapsedSeconds` and the next ones take
 * `epochSeconds` each: at least done + 1 (the budget is checked again within it), at most `limit`.
 */
export function epochsForBudget(maxMinutes: number, elapsedSeconds: number, epochSeconds: number, done: number, limit: number): number {
  const left = maxMinutes * 60 * 0.98 - elapsedSeconds;
  const more = epochSeconds > 0 ? Math.floor(left / epochSeconds) : limit;
  return Math.min(limit, Math.max(done + 1, done + more));
}

/** The head's variables: the trainable weights of the layers outside the convolution blocks (b1_…, b2_…). */
export function headVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.layers.filter((l) => !/^b\d+/.test(l.name)).flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
}

/**
 * With fitToTime: after the first epoch, and again after the first with every layer learning,
 * set the run's epochs (at most `limit`, the epochs asked for) from the time this one took
 * (validation included), so that the schedule ends with the time budget. A head-only epoch costs
 * less than a full one (no gradients through the convolutions; measured about 0.6 of one with its
 * validation), so the estimate from it is a provisional one, replaced by the next.
 */
export function fitSchedule(config: TrainConfig, limit: number, epoch: number, epochStartMs: number, runStartMs: number): void {
  if (!config.fitToTime || config.maxMinutes <= 0) return;
  const head = config.headEpochs ?? 0;
  if (epoch !== 0 && epoch !== head) return;
  const now = performance.now();
  const seconds = ((now - epochStartMs) / 1000) * (epoch < head ? 1.6 : 1);
  config.epochs = epochsForBudget(config.maxMinutes, (now - runStartMs) / 1000, seconds, epoch + 1, limit);
}
