// Networks that are exactly invariant to quarter turns of the image, at a plain network's cost.
//
// Plankton have no up. A plain network learns every feature four times over, once per quarter
// turn; a rotation-equivariant network (a p4 group convolution, Cohen & Welling 2016) learns it
// once and applies it turned. Here that is a plain tfjs-layers network whose weights are tied:
// every channel count is a multiple of 4, channel c = 4·g + r is group g seen at quarter turn r,
// and a weight equals the weight it becomes when the kernel is turned a quarter and every
// orientation index moves on by one:
//   first convolution   K[turn(p)][0][g, r+1]          = K[p][0][g, r]
//   later convolutions  K[turn(p)][i, t+1][g, r+1]     = K[p][i, t][g, r]
//   batch norms         γ[g, r+1] = γ[g, r], β, moving mean and variance alike
//   first dense layer   W[turn(p), g, r+1][u]          = W[p, g, r][u]   (every unit invariant)
// Turning the image then turns every feature map and moves its orientations on by one, and the
// dense layer sums them back to the same value: the probabilities do not change. Convolutions
// with 'same' padding and 2x2 pooling of even-sized maps keep this exactly. The saved model is an
// ordinary network (the daemon's folded inference runs it unchanged); only training keeps the
// ties: each tied gradient is replaced by its mean over its orbit (the gradient of the shared
// weight), so Adam, which works elementwise, moves every weight of an orbit alike.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** For each tied variable (by its tfjs name), where each element goes under one quarter turn. */
export type RotationTies = Map<string, Int32Array>;

/** Where element (y, x) of an n×n grid lands when the grid is turned a quarter. */
function turn(y: number, x: number, n: number): [number, number] {
  return [x, n - 1 - y];
}

function channelStep(c: number): number {
  return c - (c % 4) + ((c + 1) % 4);
}

/** `lifting`: the first convolution, whose input channels (gray, or R, G, B) have no orientation. */
function convStep(shape: number[], lifting: boolean): Int32Array {
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  const perm = new Int32Array(kh * kw * ci * co);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++) {
      const [ty, tx] = turn(y, x, kh);
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) {
          const ti = lifting ? i : channelStep(i);
          perm[((y * kw + x) * ci + i) * co + o] = ((ty * kw + tx) * ci + ti) * co + channelStep(o);
        }
    }
  return perm;
}

function vectorStep(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, c) => channelStep(c));
}

function denseStep(h: number, c: number, units: number): Int32Array {
  const perm = new Int32Array(h * h * c * units);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < h; x++) {
      const [ty, tx] = turn(y, x, h);
      for (let ch = 0; ch < c; ch++) {
        const from = ((y * h + x) * c + ch) * units;
        const to = ((ty * h + tx) * c + channelStep(ch)) * units;
        for (let u = 0; u < units; u++) perm[from + u] = to + u;
      }
    }
  return perm;
}

/** The tfjs name a tied variable is known by in `RotationTies` (and to the optimizer). */
export function variableName(w: tfl.LayerVariable): string {
  return (w.read() as tf.Variable).name;
}

/**
 * The ties of a pw-p4 network: its convolutions, their batch norms (moving statistics included)
 * and the dense layer after the flatten. Throws when a layer cannot be tied (a channel count that
 * is not a multiple of 4, an odd-sized map before the flatten).
 */
export function rotationTies(model: tfl.LayersModel): RotationTies {
  const ties: RotationTies = new Map();
  let afterFlatten: { side: number; channels: number } | null = null;
  let first = true;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const weights = layer.weights;
    if (cls === 'Conv2D') {
      const shape = weights[0]!.shape;
      if (shape[0] !== shape[1]) throw new Error(`${layer.name}: a square kernel is needed to tie quarter turns, not ${shape[0]}x${shape[1]}.`);
      if (shape[3]! % 4 !== 0 || (!first && shape[2]! % 4 !== 0)) throw new Error(`${layer.name}: channel counts must be multiples of 4 to tie quarter turns.`);
      ties.set(variableName(weights[0]!), convStep(shape as number[], first));
      first = false;
    } else if (cls === 'BatchNormalization') {
      for (const w of weights) ties.set(variableName(w), vectorStep(w.shape[0]!));
    } else if (cls === 'Flatten') {
      const [, h, w, c] = layer.inputSpec?.[0]?.shape ?? (layer.input as tfl.SymbolicTensor).shape;
      if (h !== w || c! % 4 !== 0) throw new Error(`${layer.name}: the map before it must be square with a multiple of 4 channels to tie quarter turns.`);
      afterFlatten = { side: h!, channels: c! };
    } else if (cls === 'Dense' && afterFlatten) {
      const units = weights[0]!.shape[1]!;
      ties.set(variableName(weights[0]!), denseStep(afterFlatten.side, afterFlatten.channels, units));
      afterFlatten = null;
    }
  }
  return ties;
}

/** The orbits of a quarter turn, four indices each, each orbit listed from its smallest index. */
const orbitCache = new WeakMap<Int32Array, Int32Array>();

function orbits(step: Int32Array): Int32Array {
  let list = orbitCache.get(step);
  if (list) return list;
  list = new Int32Array(step.length);
  const seen = new Uint8Array(step.length);
  let k = 0;
  for (let j = 0; j < step.length; j++) {
    if (seen[j]) continue;
    for (let i = j, n = 0; n < 4; n++, i = step[i]!) {
      seen[i] = 1;
      list[k++] = i;
    }
  }
  orbitCache.set(step, list);
  return list;
}

/** Each element replaced by the mean of its orbit under the quarter turn `step`. */
export function orbitMean(values: Float32Array, step: Int32Array): Float32Array {
  const list = orbits(step);
  const out = new Float32Array(values.length);
  for (let k = 0; k < list.length; k += 4) {
    const a = list[k]!;
    const b = list[k + 1]!;
    const c = list[k + 2]!;
    const d = list[k + 3]!;
    const mean = (values[a]! + values[b]! + values[c]! + values[d]!) * 0.25;
    out[a] = mean;
    out[b] = mean;
    out[c] = mean;
    out[d] = mean;
  }
  return out;
}

/**
 * A batch norm's moments pooled over the four quarter turns of the images they were measured on:
 * channel c of a turned image has the statistics of channel step(c) of the image itself, so the
 * pooled mean is the orbit mean of the means, and the pooled variance the orbit mean of the second
 * moments less the square of that mean. These are tied, and they are what the layer would measure
 * on the images together with their turns.
 */
export function pooledMoments(mean: Float32Array, variance: Float32Array, step: Int32Array): { mean: Float32Array; variance: Float32Array } {
  const pooledMean = orbitMean(mean, step);
  const second = orbitMean(Float32Array.from(variance, (v, c) => v + mean[c]! * mean[c]!), step);
  return { mean: pooledMean, variance: Float32Array.from(second, (s, c) => Math.max(0, s - pooledMean[c]! * pooledMean[c]!)) };
}

/**
 * Tie the model's weights now (each replaced by its orbit's mean). With `fresh`, the random
 * kernels of a new network are scaled by 2 so they keep their initial spread (a mean of four
 * independent draws has half their standard deviation).
 */
export function tieWeights(model: tfl.LayersModel, ties: RotationTies, fresh = false): void {
  for (const w of model.weights) {
    const step = ties.get(variableName(w));
    if (!step) continue;
    const tied = orbitMean(w.read().dataSync() as Float32Array, step);
    if (fresh && w.shape.length > 1) for (let i = 0; i < tied.length; i++) tied[i] = tied[i]! * 2;
    tf.tidy(() => {
      w.write(tf.tensor(tied, w.shape as number[], 'float32'));
    });
  }
}

type VariableGradients = Parameters<tf.Optimizer['applyGradients']>[0];

/**
 * Keep the ties through training: the optimizer's gradients for tied variables are replaced by
 * their orbit means before each step, and tied variables it does not train (the batch norms'
 * moving statistics) are tied again after it.
 */
export function tieOptimizer(optimizer: tf.Optimizer, ties: RotationTies): void {
  const apply = optimizer.applyGradients.bind(optimizer);
  optimizer.applyGradients = (variableGradients: VariableGradients) => {
    const tidied = tf.tidy(() => {
      const list = Array.isArray(variableGradients)
        ? variableGradients.map(({ name, tensor }) => ({ name, tensor }))
        : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
      return list.map(({ name, tensor }) => {
        const step = ties.get(name);
        if (!step || !tensor) return { name, tensor };
        return { name, tensor: tf.tensor(orbitMean(tensor.dataSync() as Float32Array, step), tensor.shape, 'float32') };
      });
    });
    const trained = new Set(tidied.map((g) => g.name));
    try {
      apply(tidied as VariableGradients);
    } finally {
      for (const g of tidied) if (ties.has(g.name)) g.tensor?.dispose();
    }
    const variables = tf.engine().registeredVariables;
    for (const [name, step] of ties) {
      if (trained.has(name)) continue;
      const v = variables[name];
      if (v) tf.tidy(() => v.assign(tf.tensor(orbitMean(v.dataSync() as Float32Array, step), v.shape, 'float32')));
    }
  };
}
