// What a fine-tuning job does to a member's network: which layers learn (and which keep their
// batch-norm statistics), and the classifier columns of old and new classes.
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageTable } from '../learn/image-cache.js';
import { predictTable } from '../learn/trainer.js';
import { keepOldHeadColumns, logitsHead, newClassShifts, setLogitsHead } from './head.js';
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
  const head = logitsHead(model);
  keepOldHeadColumns(head, logitsHead(from), oldCount);
  setLogitsHead(model, head);
}

/**
 * A class learnt from a few dozen examples tends to claim images of the old classes. For each new
 * class (outputs from `oldCount` on), set its logit bias so that it would claim at most `rate` of
 * any one old class's replay images (`replayClasses`: each row's class): lowered when it claims
 * more, raised when it claims fewer (a class trained beside fixed old columns starts too shy).
 * Returns the amount each bias went down (negative: up).
 */
export function calibrateNewClasses(model: tfl.LayersModel, replay: ImageTable, replayClasses: Int32Array, oldCount: number, rate: number): number[] {
  if (rate <= 0 || replay.rels.length === 0) return [];
  const probs = predictTable(model, replay);
  const head = logitsHead(model);
  const shifts = newClassShifts(probs, head.units, oldCount, rate, replayClasses);
  shifts.forEach((shift, i) => (head.bias[oldCount + i] = head.bias[oldCount + i]! - shift));
  setLogitsHead(model, head);
  return shifts;
}
