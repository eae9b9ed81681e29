// Batch normalisation in training mode with its gradient written out in closed form.
//
// tfjs-layers normalises a training batch with tf.moments + tf.batchNorm, so the tape holds
// Mean, SquaredDifference, Mean and FusedBatchNorm, and backpropagation walks ~20 full-size
// elementwise passes per layer; on wasm that is the largest cost of a training step after the
// convolutions. The closed form needs about 7:
//   x̂ = (x − μ)·r,  r = 1/√(σ² + ε)
//   dβ = Σ dy,  dγ = Σ dy·x̂
//   dx = γ·r · (dy − (dβ + x̂·dγ) / m)          (m = values per channel)
// On wasm a batch norm followed by a leaky ReLU is fused further, into the four loops of
// heap-kernels.ts (two forward, two backward), and so is a 2x2 max pool after them: the forward
// pass writes only the pooled activation, and the backward pass routes the pool's gradient
// before the batch-norm sums (the full-size activation is never stored).
// useFastBatchNorm(model) swaps this in for the model's BatchNormalization layers while it
// trains (an own `call` on each layer instance; the saved model is unchanged), and returns the
// function that puts the layers back.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { batchNormLeakyBackward, batchNormLeakyForward, heapKernelsApply } from './heap-kernels.js';

interface LayerVariableLike {
  read(): tf.Tensor;
  write(value: tf.Tensor): void;
}

interface BatchNormLayerLike {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: LayerVariableLike;
  beta: LayerVariableLike;
  movingMean: LayerVariableLike;
  movingVariance: LayerVariableLike;
  call: (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];
}

/**
 * Normalise x over every axis but the last, scale and shift; returns the output and the batch
 * statistics (the caller owns all three). Gradients flow to x, gamma and beta.
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  let stats: { mean: tf.Tensor1D; variance: tf.Tensor1D } | null = null;
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, gIn, bIn, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const { mean, variance } = tf.moments(xIn, axes);
    // y = x·a + b with a = γ·r, b = β − μ·a: two broadcast passes (wasm's FusedBatchNorm kernel
    // takes twice as long as a broadcast multiply-add).
    const a = tf.mul(gIn, tf.rsqrt(tf.add(variance, epsilon)));
    const y = tf.add(tf.mul(xIn, a), tf.sub(bIn, tf.mul(mean, a)));
    stats = { mean: tf.keep(tf.clone(mean)) as tf.Tensor1D, variance: tf.keep(tf.clone(variance)) as tf.Tensor1D };
    save([xIn, mean, variance, gIn]);
    return {
      value: y,
      gradFunc: (d: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, mu, va, g] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const m = xs.size / mu.size;
        const r = tf.rsqrt(tf.add(va, epsilon));
        const xhat = tf.add(tf.mul(xs, r), tf.neg(tf.mul(mu, r)));
        const dBeta = tf.sum(d, axes) as tf.Tensor1D;
        const dGamma = tf.sum(tf.mul(d, xhat), axes) as tf.Tensor1D;
        // t = (dβ + x̂·dγ) / m, then dx = (dy − t)·γ·r.
        const t = tf.add(tf.mul(xhat, tf.div(dGamma, m)), tf.div(dBeta, m));
        const dx = tf.mul(tf.sub(d, t), tf.mul(g, r));
        return [dx, dGamma, dBeta];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  const y = op(x, gamma, beta);
  const s = stats as { mean: tf.Tensor1D; variance: tf.Tensor1D } | null;
  if (!s) throw new Error('batch statistics were not computed');
  return { y, mean: s.mean, variance: s.variance };
}

/**
 * Batch norm then leaky ReLU (slope alpha) over the wasm memory, with its closed-form gradient;
 * returns the activation (with `pool`: its 2x2, stride-2 max pool) and the batch statistics (the
 * caller owns all three).
 */
export function batchNormLeakyTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number, alpha: number, pool = false): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  let stats: { mean: tf.Tensor1D; variance: tf.Tensor1D } | null = null;
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, gIn, bIn, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const f = batchNormLeakyForward(xIn, gIn, bIn, epsilon, alpha, pool);
    stats = { mean: tf.keep(tf.clone(f.mean)), variance: tf.keep(tf.clone(f.variance)) };
    save([xIn, gIn, bIn, f.mean, f.variance, ...(f.activation ? [f.activation.scale, f.activation.shift] : [])]);
    return {
      value: f.y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, g, b, mu, va, scale, shift] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D?, tf.Tensor1D?];
        const r = batchNormLeakyBackward(dy, xs, g, b, mu, va, epsilon, alpha, scale && shift ? { scale, shift } : null);
        return [r.dx, r.dGamma, r.dBeta];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  const y = op(x, gamma, beta);
  const s = stats as { mean: tf.Tensor1D; variance: tf.Tensor1D } | null;
  if (!s) throw new Error('batch statistics were not computed');
  return { y, mean: s.mean, variance: s.variance };
}

function isBatchNorm(layer: tfl.layers.Layer): boolean {
  return layer.getClassName() === 'BatchNormalization';
}

/** The layer that alone consumes this layer's output, if any. */
function soleConsumer(layer: tfl.layers.Layer): tfl.layers.Layer | null {
  const nodes = (layer as unknown as { outboundNodes: { outboundLayer: tfl.layers.Layer }[] }).outboundNodes;
  return nodes.length === 1 ? nodes[0]!.outboundLayer : null;
}

/** The LeakyReLU layer that alone consumes this layer's output, if any. */
function soleLeakyConsumer(layer: tfl.layers.Layer): (tfl.layers.Layer & { alpha: number }) | null {
  const next = soleConsumer(layer);
  return next?.getClassName() === 'LeakyReLU' ? (next as tfl.layers.Layer & { alpha: number }) : null;
}

interface PoolLayerLike {
  poolSize: number[];
  strides: number[];
  padding: string;
  dataFormat: string;
}

/** The 2x2, stride-2, unpadded channels-last MaxPooling2D layer that alone consumes this layer's output, if any. */
function solePoolConsumer(layer: tfl.layers.Layer): tfl.layers.Layer | null {
  const next = soleConsumer(layer);
  if (next?.getClassName() !== 'MaxPooling2D') return null;
  const p = next as unknown as PoolLayerLike;
  const two = (v: number[]) => v.length === 2 && v[0] === 2 && v[1] === 2;
  return two(p.poolSize) && two(p.strides) && p.padding === 'valid' && p.dataFormat === 'channelsLast' ? next : null;
}

/**
 * While training, let `layer` hand its input straight on when `skip` says the layer before has
 * already done its work; returns the function that puts its own `call` back.
 */
function passThrough(layer: tfl.layers.Layer, skip: (x: tf.Tensor) => boolean): () => void {
  const target = layer as unknown as BatchNormLayerLike;
  const original = target.call;
  target.call = function (inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (kwargs.training && skip(x)) return x;
    return original.call(this, inputs, kwargs);
  };
  return () => {
    target.call = original;
  };
}

/** Use the closed-form gradient in the model's channels-last BatchNormalization layers. */
export function useFastBatchNorm(model: tfl.LayersModel): () => void {
  const restored: (() => void)[] = [];
  for (const layer of model.layers) {
    if (!isBatchNorm(layer)) continue;
    const bn = layer as unknown as BatchNormLayerLike;
    if (!(bn.axis === -1 || bn.axis === 3) || !bn.center || !bn.scale) continue;
    const original = bn.call;
    // On wasm, the activation is computed here and its own layer passes the result through.
    const act = soleLeakyConsumer(layer);
    // Decided per call from the tensor's channels (the same for both layers: batch norm keeps them).
    const fused = (t: tf.Tensor) => act !== null && act.alpha >= 0 && act.alpha <= 1 && heapKernelsApply(t.shape[t.rank - 1]!);
    // A 2x2 max pool after the activation is taken in the same loops; its layer then passes the
    // pooled result through. The flag tells it that the batch norm just before pooled already.
    const pool = act ? solePoolConsumer(act) : null;
    const pooled = (t: tf.Tensor) => pool !== null && fused(t) && t.rank === 4 && t.shape[1]! % 2 === 0 && t.shape[2]! % 2 === 0;
    let pooledAhead = false;
    if (pool) {
      restored.push(
        passThrough(pool, () => {
          const ahead = pooledAhead;
          pooledAhead = false;
          return ahead;
        }),
      );
    }
    if (act) restored.push(passThrough(act, fused));
    bn.call = function (inputs, kwargs) {
      pooledAhead = false;
      if (!kwargs.training) return original.call(this, inputs, kwargs);
      return tf.tidy(() => {
        const x = Array.isArray(inputs) ? inputs[0]! : inputs;
        const gamma = bn.gamma.read() as tf.Tensor1D;
        const beta = bn.beta.read() as tf.Tensor1D;
        const withPool = pooled(x);
        const { y, mean, variance } = fused(x) ? batchNormLeakyTraining(x, gamma, beta, bn.epsilon, act!.alpha, withPool) : batchNormTraining(x, gamma, beta, bn.epsilon);
        for (const [variable, value] of [
          [bn.movingMean, mean],
          [bn.movingVariance, variance],
        ] as const) {
          tf.tidy(() => {
            const current = variable.read();
            variable.write(tf.sub(current, tf.mul(tf.sub(current, value), 1 - bn.momentum)));
          });
        }
        tf.dispose([mean, variance]);
        pooledAhead = withPool;
        return y;
      });
    };
    restored.push(() => {
      bn.call = original;
    });
  }
  return () => restored.forEach((r) => r());
}
