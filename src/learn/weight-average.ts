// Stochastic weight averaging (Izmailov et al., "Averaging Weights Leads to Wider Optima and
// Better Generalization", 2018): the mean of the weights at the end of every epoch from
// `averageFrom` on, a flatter point than any one epoch's, which tends to generalise and calibrate
// better. The batch norms' moving statistics of averaged weights mean nothing, so they are measured
// again on training images before the average is validated; it is kept when its validation
// log-loss beats the best epoch's.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageTable } from './image-cache.js';
import { channelMoments, evenSample } from './feature-stats.js';
import { computeMetrics, type Metrics } from './metrics.js';
import { pooledMoments, variableName, type RotationTies } from '../engine/rotation-ties.js';
import { predictTable } from './trainer.js';
import { readTensors, writeTensors } from './tensor-file.js';

/** Training images (evenly spaced over the table) on which the batch norms are measured again. */
export const BATCH_NORM_IMAGES = 4096;

/** What a run with averaging reports about the average. */
export interface AverageReport {
  /** First and last epoch (1-based) in the average. */
  fromEpoch: number;
  toEpoch: number;
  epochs: number;
  validation?: Metrics;
  /** The average's weights are what the run returns (better validation log-loss than every epoch). */
  kept: boolean;
}

export interface AverageSpan {
  count: number;
  fromEpoch: number;
  toEpoch: number;
}

/** The running mean of a model's weights over epochs. */
export class WeightAverage {
  private constructor(
    private readonly means: Float32Array[],
    public count: number,
    public fromEpoch: number,
    public toEpoch: number,
  ) {}

  static empty(): WeightAverage {
    return new WeightAverage([], 0, 0, 0);
  }

  /** Add the model's current weights as those of `epoch` (1-based). */
  add(model: tfl.LayersModel, epoch: number): void {
    const weights = model.getWeights();
    if (this.count === 0) {
      this.means.splice(0, this.means.length, ...weights.map((w) => Float32Array.from(w.dataSync() as Float32Array)));
      this.fromEpoch = epoch;
    } else {
      const k = 1 / (this.count + 1);
      weights.forEach((w, i) => {
        const mean = this.means[i]!;
        const value = w.dataSync() as Float32Array;
        for (let j = 0; j < mean.length; j++) mean[j] = mean[j]! + (value[j]! - mean[j]!) * k;
      });
    }
    this.count++;
    this.toEpoch = epoch;
  }

  /** The averaged weights, shaped as the model's. */
  tensors(model: tfl.LayersModel): tf.Tensor[] {
    return model.getWeights().map((w, i) => tf.tensor(this.means[i]!, w.shape, 'float32'));
  }

  /** Where the average stands (kept in the checkpoint's state beside average.bin). */
  get span(): AverageSpan {
    return { count: this.count, fromEpoch: this.fromEpoch, toEpoch: this.toEpoch };
  }

  async save(dir: string): Promise<void> {
    if (this.count === 0) return;
    const tensors = this.means.map((m) => tf.tensor1d(m));
    await writeTensors(path.join(dir, 'average.bin'), tensors, tensors.map((_, i) => String(i)));
    tf.dispose(tensors);
  }

  /** The average a checkpoint holds (`span` from its state), or an empty one. */
  static async load(dir: string, span: AverageSpan | undefined): Promise<WeightAverage> {
    const file = path.join(dir, 'average.bin');
    if (!span || span.count === 0 || !existsSync(file)) return WeightAverage.empty();
    const { tensors } = await readTensors(file);
    const means = tensors.map((t) => Float32Array.from(t.dataSync() as Float32Array));
    tf.dispose(tensors);
    return new WeightAverage(means, span.count, span.fromEpoch, span.toEpoch);
  }
}

/**
 * Measure every batch norm's moving mean and variance again on up to `images` of `table` (no
 * augmentation), in network order, so that each one sees what the layers before it now give it.
 * The learned scale and shift stay as they are. With the `ties` of a quarter-turn invariant
 * network, each layer's moments are pooled over the images' quarter turns (pooledMoments), so the
 * network stays invariant and later layers are measured on what it will run.
 */
export function resetBatchNormStatistics(model: tfl.LayersModel, table: ImageTable, options: { images?: number; ties?: RotationTies } = {}): number {
  const sample = evenSample(table, options.images ?? BATCH_NORM_IMAGES);
  let done = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const input = (layer as unknown as { inboundNodes: { inputTensors: tfl.SymbolicTensor[] }[] }).inboundNodes[0]?.inputTensors[0];
    if (!input) continue;
    const weights = layer.getWeights();
    if (weights.length !== 4) continue; // a batch norm without its own scale and shift
    const measured = channelMoments(model, input, sample);
    const step = options.ties?.get(variableName(layer.weights[2]!));
    const { mean, variance } = step ? pooledMoments(measured.mean, measured.variance, step) : measured;
    const [gamma, beta] = weights;
    const stats = [tf.tensor1d(mean), tf.tensor1d(variance)];
    layer.setWeights([gamma!, beta!, ...stats]);
    tf.dispose(stats);
    done++;
  }
  return done;
}

/**
 * Put the average into `model`, measure its batch norms on `trainTable` (tied by `ties` for a
 * quarter-turn invariant network), and validate it. Returns the report and the weights the run
 * should return: the average's when it beats `bestLoss`, else `best` (the model then holds `best`,
 * or is left as it was trained when `best` is null).
 */
export function finishAverage(
  model: tfl.LayersModel,
  average: WeightAverage,
  trainTable: ImageTable,
  validation: { table: ImageTable; labels: Int32Array; numClasses: number } | null,
  best: { weights: tf.Tensor[] | null; loss: number },
  ties?: RotationTies,
): { report: AverageReport; best: tf.Tensor[] | null } {
  const trained = model.getWeights().map((w) => tf.clone(w));
  const averaged = average.tensors(model);
  model.setWeights(averaged);
  tf.dispose(averaged);
  resetBatchNormStatistics(model, trainTable, { ties });
  const report: AverageReport = { fromEpoch: average.fromEpoch, toEpoch: average.toEpoch, epochs: average.count, kept: false };
  if (validation) report.validation = computeMetrics(predictTable(model, validation.table), validation.labels, validation.numClasses);
  // Without validation images the average is the point of averaging: keep it.
  report.kept = report.validation ? report.validation.logLoss < best.loss : true;
  if (report.kept) {
    tf.dispose(trained);
    tf.dispose(best.weights ?? []);
    return { report, best: model.getWeights().map((w) => tf.clone(w)) };
  }
  model.setWeights(trained);
  tf.dispose(trained);
  return { report, best: best.weights };
}
