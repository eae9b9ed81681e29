// The network `train --from` fine-tunes: the parent's layers, its classifier when the classes are
// the same, else a new classifier for the lab's classes in which every class the parent also has
// (by name, after --category-map renames it) starts from the parent's row: its weights and bias
// in the final layer. The dense layers before it are the parent's, as are the convolutions. Only
// classes new to the parent start fresh (Glorot weights, zero bias). Before any training step the
// new network's logits for the carried classes are the parent's, so it ranks them as the parent did.
// A member that reads R, G and B can start from a gray one: channels.ts widens its input.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { sameClassList } from '../classify/classes.js';
import type { MemberMeta } from '../classify/meta.js';
import { folderIO, readMeta } from '../classify/model-files.js';
import { widenInput } from './channels.js';

/** Where the classifier's rows came from; recorded in meta.json `training.head`. */
export interface HeadOrigin {
  /** Classes whose row is the parent's (their weights and bias in the final layer). */
  carried: string[];
  /** Classes new to the parent, started fresh. */
  fresh: string[];
}

export interface TransferOptions {
  seed: number;
  /** Train only the head (and the top `unfreezeTop` convolution blocks). */
  freeze?: boolean;
  unfreezeTop?: number;
  /** Input channels of the new model (default: the parent's); 3 from a gray parent widens its input (channels.ts). */
  channels?: 1 | 3;
}

export interface TransferModel {
  model: tfl.LayersModel;
  parent: MemberMeta;
  /** null: the parent's classifier is kept whole (the same classes in the same order). */
  head: HeadOrigin | null;
}

/** A model to fine-tune from the version folder `fromDir`, for `classes`, frozen as asked. */
export async function transferModel(fromDir: string, classes: string[], options: TransferOptions): Promise<TransferModel> {
  const parent = await readMeta(fromDir);
  let base = await tfl.loadLayersModel(folderIO(fromDir));
  const channels = options.channels ?? parent.input.channels;
  if (channels !== parent.input.channels) {
    if (channels !== 3) throw new Error(`--channels ${channels}: ${parent.name}/${parent.version} reads ${parent.input.channels} channels; a colour member cannot be made gray again (train the gray member with --channels 1 from a gray parent).`);
    const gray = base;
    base = await widenInput(gray, 3);
    gray.dispose();
  }
  let model = base;
  let head: HeadOrigin | null = null;
  if (!sameClassList(parent.classes, classes)) {
    const old = base.getLayer('logits');
    const features = old.input as tfl.SymbolicTensor;
    // Same layer names as the parent's head (the old head is not part of the new model), so that
    // logitsModel() finds the classifier and the saved topology reads back.
    const layer = tfl.layers.dense({ units: classes.length, kernelInitializer: tfl.initializers.glorotUniform({ seed: options.seed }), name: 'logits' });
    const logits = layer.apply(features) as tfl.SymbolicTensor;
    const probabilities = tfl.layers.activation({ activation: 'softmax', name: 'probabilities' }).apply(logits) as tfl.SymbolicTensor;
    model = tfl.model({ inputs: base.inputs, outputs: probabilities, name: base.name });
    head = carryRows(old, parent.classes, layer, classes);
    old.dispose(); // the parent's classifier, now copied: not part of the new model
  }
  if (options.freeze) {
    const blocks = [...new Set(model.layers.map((l) => /^b(\d+)/.exec(l.name)?.[1]).filter((b): b is string => b != null))].map(Number).sort((a, b) => a - b);
    const open = new Set(blocks.slice(blocks.length - (options.unfreezeTop ?? 0)).map(String));
    for (const layer of model.layers) {
      const block = /^b(\d+)/.exec(layer.name)?.[1];
      const isHead = block === undefined;
      layer.trainable = isHead || open.has(block);
    }
  }
  return { model, parent, head };
}

/**
 * Copy into the dense layer `to` (one unit per class of `toClasses`) the kernel column and bias of
 * each class that `from` (one unit per class of `fromClasses`) also has; the others keep their start.
 */
export function carryRows(from: tfl.layers.Layer, fromClasses: readonly string[], to: tfl.layers.Layer, toClasses: readonly string[]): HeadOrigin {
  const [fromKernel, fromBias] = from.getWeights();
  const [toKernel, toBias] = to.getWeights();
  const inputs = toKernel!.shape[0]!;
  const k = toClasses.length;
  const kp = fromClasses.length;
  const kernel = toKernel!.dataSync().slice() as Float32Array;
  const bias = toBias ? (toBias.dataSync().slice() as Float32Array) : null;
  const theirKernel = fromKernel!.dataSync();
  const theirBias = fromBias?.dataSync();
  const index = new Map(fromClasses.map((c, i) => [c, i]));
  const head: HeadOrigin = { carried: [], fresh: [] };
  toClasses.forEach((c, j) => {
    const i = index.get(c);
    if (i === undefined) {
      head.fresh.push(c);
      return;
    }
    for (let f = 0; f < inputs; f++) kernel[f * k + j] = theirKernel[f * kp + i]!;
    if (bias && theirBias) bias[j] = theirBias[i]!;
    head.carried.push(c);
  });
  const next = [tf.tensor2d(kernel, [inputs, k]), ...(bias ? [tf.tensor1d(bias)] : [])];
  to.setWeights(next);
  for (const t of next) t.dispose();
  return head;
}
