// The training batches both trainers draw: each epoch's seeded order, every image augmented, its
// target row (the label, or the label mixed with a teacher's vote) and loss weight, then the
// batch's images mixed in pairs when the run mixes (mix.ts). The single-thread trainer and the
// data-parallel one call the same code, so they see the same batches.
import { augmentInto } from './augment.js';
import { mixBatch, type MixDraw } from './mix.js';
import { deriveSeed, mulberry32, shuffleInPlace } from './random.js';
import { targetRows } from './targets.js';
import type { TrainConfig, TrainData } from './trainer.js';

/** An epoch's image order and augmentation generator: every trainer draws the same. */
export function epochDraws(seed: number, n: number, epoch: number): { order: number[]; rng: () => number } {
  return {
    order: shuffleInPlace(Array.from({ length: n }, (_, i) => i), mulberry32(deriveSeed(seed, 'shuffle', epoch))),
    rng: mulberry32(deriveSeed(seed, 'augment', epoch)),
  };
}

/** One batch's buffers: `count` images and their labels, indices, target rows and loss weights. */
export interface TrainBatch {
  count: number;
  x: Float32Array;
  labels: Int32Array;
  /** Index of each image in the training table. */
  picked: Int32Array;
  targets: Float32Array;
  lossWeights: Float32Array;
}

export function newBatch(count: number, imageFloats: number, numClasses: number): TrainBatch {
  return {
    count,
    x: new Float32Array(count * imageFloats),
    labels: new Int32Array(count),
    picked: new Int32Array(count),
    targets: new Float32Array(count * numClasses),
    lossWeights: new Float32Array(count),
  };
}

/** The batches of one epoch: `fill(b, out)` writes batch b into `out`. */
export interface EpochBatches {
  fill(b: number, out: TrainBatch): MixDraw;
}

/**
 * The batches of `epoch`. Batch b must be filled after batch b − 1 (augmentation and mixing
 * draw from the epoch's generators in order). Mixing draws from its own generator, so a run with
 * and one without mixing see the same images, turned and cropped the same way.
 */
export function epochBatches(data: TrainData, config: TrainConfig, weights: Float32Array, epoch: number): EpochBatches {
  const { table, labels } = data.train;
  const { order, rng } = epochDraws(config.seed, labels.length, epoch);
  const mixRng = mulberry32(deriveSeed(config.seed, 'mix', epoch));
  const s = table.size;
  const channels = table.channels ?? 1;
  const one = s * s * channels;
  const distill = config.distill ?? 0;
  return {
    fill(b: number, out: TrainBatch): MixDraw {
      for (let i = 0; i < out.count; i++) {
        const idx = order[b * out.count + i]!;
        augmentInto(table.pixels.subarray(idx * one, (idx + 1) * one), s, out.x.subarray(i * one, (i + 1) * one), rng, config.augment, config.fill, channels);
        out.labels[i] = labels[idx]!;
        out.picked[i] = idx;
        out.lossWeights[i] = weights[labels[idx]!]!;
      }
      targetRows(out.targets, data.numClasses, out.picked, labels, data.train.targets, distill);
      if (!config.mix) return { share: 1, partner: null };
      return mixBatch({ x: out.x, targets: out.targets, lossWeights: out.lossWeights, count: out.count, size: s, channels, numClasses: data.numClasses }, config.mix, mixRng);
    },
  };
}
