// A member's classifier (the dense "logits" layer, or the final Gemm of an imported model.onnx)
// as plain arrays: growing it for classes it did not know (the old weights kept, so old classes
// score exactly as before, and new columns small and random, with a bias below every old class so
// that a new class wins nothing until training teaches it), putting the old classes' columns back,
// setting a new class's bias against the replay images, and its probabilities on features.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mulberry32 } from '../learn/random.js';

/** logits = features · weights + bias; weights [inputs, units] row-major. */
export interface HeadWeights {
  inputs: number;
  units: number;
  weights: Float32Array;
  bias: Float32Array;
}

interface LayerConfig {
  class_name: string;
  name?: string;
  config: { name: string; units?: number; [key: string]: unknown };
}

/** The head with `added` more outputs (new arrays; `head` is left as it is). */
export function growHeadWeights(head: HeadWeights, added: number, seed: number): HeadWeights {
  const { inputs, units: oldUnits } = head;
  const units = oldUnits + added;
  const rng = mulberry32(seed);
  const k = new Float32Array(inputs * units);
  const scale = Math.sqrt(6 / (inputs + units)) * 0.1;
  for (let i = 0; i < inputs; i++) {
    k.set(head.weights.subarray(i * oldUnits, (i + 1) * oldUnits), i * units);
    for (let j = oldUnits; j < units; j++) k[i * units + j] = (rng() * 2 - 1) * scale;
  }
  const b = new Float32Array(units);
  b.set(head.bias);
  const floor = Math.min(...head.bias) - 1;
  for (let j = oldUnits; j < units; j++) b[j] = floor;
  return { inputs, units, weights: k, bias: b };
}

/** The "logits" layer of a layers model as a head (copies). */
export function logitsHead(model: tfl.LayersModel): HeadWeights {
  const [kernel, bias] = model.getLayer('logits').getWeights() as [tf.Tensor2D, tf.Tensor1D];
  const [inputs, units] = kernel.shape;
  return { inputs, units, weights: Float32Array.from(kernel.dataSync() as Float32Array), bias: Float32Array.from(bias.dataSync() as Float32Array) };
}

/** Set the "logits" layer of a layers model (of the head's shape) to the head. */
export function setLogitsHead(model: tfl.LayersModel, head: HeadWeights): void {
  model.getLayer('logits').setWeights([tf.tensor2d(head.weights, [head.inputs, head.units]), tf.tensor1d(head.bias)]);
}

/** A new model with `added` more outputs; the old model is left untouched (dispose it yourself). */
export async function growHead(model: tfl.LayersModel, added: number, seed: number): Promise<tfl.LayersModel> {
  if (added <= 0) return model;
  const topology = model.toJSON(null, false) as unknown as { config: { layers: LayerConfig[] } };
  const logits = topology.config.layers.find((l) => l.config.name === 'logits');
  if (!logits || typeof logits.config.units !== 'number') throw new Error('The model has no dense layer named "logits" to grow.');
  logits.config.units = logits.config.units + added;
  const grown = (await tfl.models.modelFromJSON({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'] } as never)) as tfl.LayersModel;
  const head = growHeadWeights(logitsHead(model), added, seed);
  const weights = model.layers.map((l) => l.getWeights());
  grown.layers.forEach((layer, i) => {
    if (layer.name === 'logits') setLogitsHead(grown, head);
    else if (weights[i]!.length > 0) layer.setWeights(weights[i]!);
  });
  return grown;
}

/** Copy the first `oldCount` output columns (weights and bias) of `from` into `head`, in place. */
export function keepOldHeadColumns(head: HeadWeights, from: HeadWeights, oldCount: number): void {
  for (let i = 0; i < head.inputs; i++) for (let j = 0; j < oldCount; j++) head.weights[i * head.units + j] = from.weights[i * from.units + j]!;
  for (let j = 0; j < oldCount; j++) head.bias[j] = from.bias[j]!;
}

/**
 * For each new class (outputs from `oldCount` on), how far its logit bias must go down so that it
 * would claim no more than `rate` of any one old class's replay images (`probs`: their n rows of k
 * probabilities; `rowClasses`: each row's class): lowered when it claims more, raised (negative)
 * when it claims fewer. Bounded per class because the gate is: a new class that takes its few
 * look-alikes from one old class costs that class recall the gate refuses, however small a share
 * of all the replay images it is.
 */
export function newClassShifts(probs: Float32Array, k: number, oldCount: number, rate: number, rowClasses: Int32Array): number[] {
  const n = probs.length / k;
  const byClass: number[][] = Array.from({ length: oldCount }, () => []);
  for (let r = 0; r < n; r++) byClass[rowClasses[r]!]?.push(r);
  // Each row's best old class, in log-probability: what a new class must beat to claim the row.
  const bestOld = Float64Array.from({ length: n }, (_, r) => {
    let best = 0;
    for (let o = 0; o < oldCount; o++) best = Math.max(best, probs[r * k + o]!);
    return Math.log(Math.max(1e-30, best));
  });
  const shifts: number[] = [];
  for (let c = oldCount; c < k; c++) {
    let threshold = -Infinity;
    for (const rows of byClass) {
      if (rows.length === 0) continue;
      // Margin of the new class over the best old class, in logits (log-probability differences).
      const margins = Float64Array.from(rows, (r) => Math.log(Math.max(1e-30, probs[r * k + c]!)) - bestOld[r]!).sort();
      const allowed = Math.floor(rate * rows.length);
      threshold = Math.max(threshold, margins[rows.length - 1 - allowed]!);
    }
    shifts.push(threshold === -Infinity ? 0 : threshold + 1e-3);
  }
  return shifts;
}

/**
 * z[j] += Σ over i of x[at + i] · weights[i · units + j]: one feature row through a dense layer
 * (weights [inputs, units], row-major), skipping the zero features a leaky ReLU's cut leaves few of.
 */
export function addRowTimesWeights(z: Float64Array, x: ArrayLike<number>, at: number, inputs: number, weights: ArrayLike<number>, units: number): void {
  for (let i = 0; i < inputs; i++) {
    const v = x[at + i]!;
    if (v === 0) continue;
    const w = i * units;
    for (let j = 0; j < units; j++) z[j] = z[j]! + v * weights[w + j]!;
  }
}

/** Softmax probabilities of the head on `count` feature rows ([count, inputs]): count · units. */
export function headProbabilities(head: HeadWeights, features: Float32Array, count: number): Float32Array {
  const { inputs, units, weights, bias } = head;
  const out = new Float32Array(count * units);
  const z = new Float64Array(units);
  for (let r = 0; r < count; r++) {
    z.set(bias);
    addRowTimesWeights(z, features, r * inputs, inputs, weights, units);
    let max = -Infinity;
    for (let j = 0; j < units; j++) max = Math.max(max, z[j]!);
    let sum = 0;
    for (let j = 0; j < units; j++) sum += z[j] = Math.exp(z[j]! - max);
    for (let j = 0; j < units; j++) out[r * units + j] = z[j]! / sum;
  }
  return out;
}
