// A model's weights as one flat Float32Array, in model.weights order: what the main thread and
// the gradient workers send each other. The same layout on both sides, because both build the
// model from the same topology.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

export interface WeightLayout {
  /** The tfjs variables behind model.weights, in order. */
  variables: tf.Variable[];
  /** Indices (into variables) of the trainable weights, in model.trainableWeights order. */
  trainable: number[];
  /** Indices of the non-trainable ones (batch-norm moving statistics). */
  nonTrainable: number[];
  sizes: number[];
  offsets: number[];
  /** Total number of values. */
  total: number;
}

interface LayerVariableLike {
  read(): tf.Tensor;
}

export function weightLayout(model: tfl.LayersModel): WeightLayout {
  const all = model.weights as unknown as LayerVariableLike[];
  const variables = all.map((w) => w.read() as tf.Variable);
  const trainableSet = model.trainableWeights as unknown as LayerVariableLike[];
  const trainable = trainableSet.map((w) => all.indexOf(w));
  if (trainable.some((i) => i < 0)) throw new Error('a trainable weight is not among the model weights');
  const isTrainable = new Set(trainable);
  const nonTrainable = variables.map((_, i) => i).filter((i) => !isTrainable.has(i));
  const sizes = variables.map((v) => v.size);
  const offsets: number[] = [];
  let total = 0;
  for (const s of sizes) {
    offsets.push(total);
    total += s;
  }
  return { variables, trainable, nonTrainable, sizes, offsets, total };
}

/** Number of values in the given subset of the layout. */
export function subsetSize(layout: WeightLayout, indices: number[]): number {
  return indices.reduce((n, i) => n + layout.sizes[i]!, 0);
}

/** The values of the variables (all, or the listed indices), concatenated. */
export function readFlat(layout: WeightLayout, indices?: number[]): Float32Array {
  const list = indices ?? layout.variables.map((_, i) => i);
  const out = new Float32Array(subsetSize(layout, list));
  let o = 0;
  for (const i of list) {
    out.set(layout.variables[i]!.dataSync() as Float32Array, o);
    o += layout.sizes[i]!;
  }
  return out;
}

/** Assign the variables (all, or the listed indices) from concatenated values. */
export function writeFlat(layout: WeightLayout, flat: Float32Array, indices?: number[]): void {
  const list = indices ?? layout.variables.map((_, i) => i);
  if (flat.length !== subsetSize(layout, list)) throw new Error(`weight vector of ${flat.length} values, expected ${subsetSize(layout, list)}`);
  let o = 0;
  tf.tidy(() => {
    for (const i of list) {
      const v = layout.variables[i]!;
      v.assign(tf.tensor(flat.subarray(o, o + layout.sizes[i]!), v.shape, 'float32'));
      o += layout.sizes[i]!;
    }
  });
}
