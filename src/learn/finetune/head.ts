// Growing a member's classifier for classes it did not know: the same network with a wider
// "logits" layer whose first columns are the old weights (old classes score exactly as before)
// and whose new columns start small and random, with a bias below every old class so that the new
// class wins nothing until training teaches it.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mulberry32 } from '../random.js';

interface LayerConfig {
  class_name: string;
  name?: string;
  config: { name: string; units?: number; [key: string]: unknown };
}

/** A new model with `added` more outputs; the old model is left untouched (dispose it yourself). */
export async function growHead(model: tfl.LayersModel, added: number, seed: number): Promise<tfl.LayersModel> {
  if (added <= 0) return model;
  const topology = model.toJSON(null, false) as unknown as { config: { layers: LayerConfig[] } };
  const logits = topology.config.layers.find((l) => l.config.name === 'logits');
  if (!logits || typeof logits.config.units !== 'number') throw new Error('The model has no dense layer named "logits" to grow.');
  const oldUnits = logits.config.units;
  logits.config.units = oldUnits + added;
  const grown = (await tfl.models.modelFromJSON({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'] } as never)) as tfl.LayersModel;

  const rng = mulberry32(seed);
  const oldLayer = model.getLayer('logits');
  const [kernel, bias] = oldLayer.getWeights() as [tf.Tensor2D, tf.Tensor1D];
  const [inputs] = kernel.shape;
  const oldK = kernel.dataSync() as Float32Array;
  const oldB = bias.dataSync() as Float32Array;
  const units = oldUnits + added;
  const k = new Float32Array(inputs * units);
  const scale = Math.sqrt(6 / (inputs + units)) * 0.1;
  for (let i = 0; i < inputs; i++) {
    k.set(oldK.subarray(i * oldUnits, (i + 1) * oldUnits), i * units);
    for (let j = oldUnits; j < units; j++) k[i * units + j] = (rng() * 2 - 1) * scale;
  }
  const b = new Float32Array(units);
  b.set(oldB);
  const floor = Math.min(...oldB) - 1;
  for (let j = oldUnits; j < units; j++) b[j] = floor;

  const weights = model.layers.map((l) => l.getWeights());
  grown.layers.forEach((layer, i) => {
    if (layer.name === 'logits') layer.setWeights([tf.tensor2d(k, [inputs, units]), tf.tensor1d(b)]);
    else if (weights[i]!.length > 0) layer.setWeights(weights[i]!);
  });
  return grown;
}
