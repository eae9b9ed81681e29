// What a fine-tuning job does to a member's network: which layers learn (and which keep their
// batch-norm statistics), and the classifier columns of old and new classes.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageTable } from '../image-cache.js';
import { predictTable } from '../trainer.js';
import type { FinetuneLayers } from './job.js';

/**
 * Fine-tuning changes what it must and keeps what the member knows: only the chosen layers learn,
 * and the batch-norm moving statistics of the frozen ones stay as trained (momentum 1 while
 * training: small, skewed fine-tuning batches would otherwise overwrite them). Returns a function restoring the settings
 * saved in model.json.
 */
export function prepareForFinetune(model: tfl.LayersModel, layers: FinetuneLayers): () => void {
  const saved: (() => void)[] = [];
  const blocks = [...new Set(model.layers.map((l) => /^b(\d+)/.exec(l.name)?.[1]).filter((b): b is string => b != null))].map(Number).sort((a, b) => a - b);
  const top = blocks.length > 0 ? String(blocks[blocks.length - 1]) : null;
  for (const layer of model.layers) {
    const bn = layer as unknown as { momentum?: number };
    const block = /^b(\d+)/.exec(layer.name)?.[1];
    const learns = layers === 'all' || layer.name === 'logits' || (layers === 'top' && (block === undefined || block === top));
    if (!learns && layer.getClassName() === 'BatchNormalization' && typeof bn.momentum === 'number') {
      const m = bn.momentum;
      bn.momentum = 1;
      saved.push(() => {
        bn.momentum = m;
      });
    }
    if (!learns) {
      // A frozen layer computes as at inference (batch norm with its moving statistics), so the
      // layers that learn see the features the live classifier will feed them.
      const target = layer as unknown as { call: (inputs: unknown, kwargs: Record<string, unknown>) => unknown };
      const call = target.call;
      target.call = (inputs, kwargs) => call.call(layer, inputs, { ...kwargs, training: false });
      saved.push(() => {
        target.call = call;
      });
    }
    if (!learns && layer.trainable) {
      layer.trainable = false;
      saved.push(() => {
        layer.trainable = true;
      });
    }
  }
  return () => saved.forEach((f) => f());
}

/** Copy the first `oldCount` output columns (kernel and bias) of `from`'s classifier into `model`'s. */
export function keepOldColumns(model: tfl.LayersModel, from: tfl.LayersModel, oldCount: number): void {
  const layer = model.getLayer('logits');
  const [kernel, bias] = layer.getWeights() as [tf.Tensor2D, tf.Tensor1D];
  const [oldKernel, oldBias] = from.getLayer('logits').getWeights() as [tf.Tensor2D, tf.Tensor1D];
  const [inputs, units] = kernel.shape;
  const k = (kernel.dataSync() as Float32Array).slice();
  const b = (bias.dataSync() as Float32Array).slice();
  const ok = oldKernel.dataSync() as Float32Array;
  const ob = oldBias.dataSync() as Float32Array;
  for (let i = 0; i < inputs; i++) for (let j = 0; j < oldCount; j++) k[i * units + j] = ok[i * oldCount + j]!;
  for (let j = 0; j < oldCount; j++) b[j] = ob[j]!;
  layer.setWeights([tf.tensor2d(k, [inputs, units]), tf.tensor1d(b)]);
}

/**
 * A class learnt from a few dozen examples tends to claim images of the old classes. For each new
 * class (outputs from `oldCount` on), set its logit bias so that `rate` of the replay images (old
 * classes only) would be predicted as it: lowered when it claims more, raised when it claims
 * fewer (a class trained beside fixed old columns starts too shy). Returns the amount each bias
 * went down (negative: up).
 */
export function calibrateNewClasses(model: tfl.LayersModel, replay: ImageTable, oldCount: number, rate: number): number[] {
  if (rate <= 0 || replay.rels.length === 0) return [];
  const probs = predictTable(model, replay);
  const k = model.outputs[0]!.shape[1] as number;
  const n = replay.rels.length;
  const layer = model.getLayer('logits');
  const [kernel, bias] = layer.getWeights();
  const b = (bias!.dataSync() as Float32Array).slice();
  const shifts: number[] = [];
  for (let c = oldCount; c < k; c++) {
    // Margin of the new class over the best old class, in logits (log-probability differences).
    const margins = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let o = 0; o < oldCount; o++) best = Math.max(best, probs[r * k + o]!);
      margins[r] = Math.log(Math.max(1e-30, probs[r * k + c]!)) - Math.log(Math.max(1e-30, best));
    }
    margins.sort();
    const allowed = Math.floor(rate * n);
    const threshold = margins[n - 1 - allowed]!;
    const shift = threshold + 1e-3;
    b[c] = b[c]! - shift;
    shifts.push(shift);
  }
  layer.setWeights([kernel!, tf.tensor1d(b)]);
  return shifts;
}
