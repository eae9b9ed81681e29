// The learning-rate schedule of a training run: cosine decay, the transfer recipe's head-only
// epochs and warm-up, and a decay that follows the clock when a run has a time budget.
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { TrainConfig } from './trainer.js';

export function cosineRate(config: Pick<TrainConfig, 'learningRate' | 'finalLearningRateFraction'>, progress: number): number {
  const f = config.finalLearningRateFraction;
  return config.learningRate * (f + (1 - f) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
}

export type ScheduleConfig = Pick<TrainConfig, 'learningRate' | 'finalLearningRateFraction' | 'epochs' | 'headEpochs' | 'headLearningRate' | 'warmupEpochs' | 'fitToTime' | 'maxMinutes'>;

/** Where a run is in time: seconds of training so far, and when its head-only epochs ended (null: not yet). */
export interface RunClock {
  elapsedSeconds: number;
  headEndSeconds: number | null;
}

/**
 * The learning rate before batch `b` of `batches` in `epoch` (0-based): the head-only epochs at
 * their own rate, then a linear warm-up and a cosine decay. The decay runs over the remaining
 * epochs, or, with fitToTime and a time budget (and a clock), over the remaining time: however
 * fast the epochs go (a shared machine's speed changes), the rate reaches its end as the budget
 * does, and the time limit stops the run there. Without head epochs and warm-up, the plain cosine
 * over the whole run.
 */
export function scheduledRate(config: ScheduleConfig, epoch: number, b: number, batches: number, clock?: RunClock): number {
  const head = config.headEpochs ?? 0;
  if (epoch < head) return config.headLearningRate ?? config.learningRate;
  const done = epoch - head + b / batches;
  const byTime = config.fitToTime === true && config.maxMinutes > 0 && clock !== undefined;
  const start = clock?.headEndSeconds ?? clock?.elapsedSeconds ?? 0;
  const progress = byTime ? (clock.elapsedSeconds - start) / Math.max(1, config.maxMinutes * 60 - start) : done / Math.max(1, config.epochs - head);
  const rate = cosineRate(config, progress);
  const warm = config.warmupEpochs ?? 0;
  return warm > 0 ? rate * Math.min(1, (done + 1 / batches) / warm) : rate;
}

/** The head's variables: the trainable weights of the layers outside the convolution blocks (b1_…, b2_…). */
export function headVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.layers.filter((l) => !/^b\d+/.test(l.name)).flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
}
