// Growing a trained network deeper without forgetting (Chen et al., "Net2Net", Net2DeeperNet): a
// square convolution inserted into it starts as the identity, and the batch norm after it starts
// as the identity on the features it will see, so the grown network begins where the trained one
// left off instead of relearning from a scrambled middle.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageTable } from './image-cache.js';
import { channelMoments, evenSample } from './feature-stats.js';

/** Images sampled (evenly over the table) to measure the features an identity layer passes. */
const CALIBRATION_IMAGES = 512;

/**
 * A new square convolution (as many outputs as inputs, odd kernel, no bias) starts as the
 * identity: the centre tap passes each channel through and every other tap is zero. Returns false,
 * changing nothing, for any other layer.
 */
export function startAsIdentity(layer: tfl.layers.Layer): boolean {
  if (layer.getClassName() !== 'Conv2D') return false;
  const weights = layer.getWeights();
  if (weights.length !== 1) return false;
  const [kh, kw, ci, co] = weights[0]!.shape as [number, number, number, number];
  if (kh !== kw || kh % 2 !== 1 || ci !== co) return false;
  const kernel = new Float32Array(kh * kw * ci * co);
  const centre = ((kh - 1) / 2) * kw + (kw - 1) / 2;
  for (let c = 0; c < ci; c++) kernel[(centre * ci + c) * co + c] = 1;
  const dirac = tf.tensor4d(kernel, [kh, kw, ci, co]);
  layer.setWeights([dirac]);
  dirac.dispose();
  return true;
}

/**
 * For each identity convolution named in `convs` (in network order) that a batch norm `<id>_bn`
 * follows, set that batch norm to undo its own normalisation on these images: scale the standard
 * deviation and shift the mean of each channel the convolution passes (measured on up to
 * CALIBRATION_IMAGES of `table`), and the same as its moving statistics. Returns the batch norms set.
 */
export function calibrateIdentityNorms(model: tfl.LayersModel, convs: string[], table: ImageTable): string[] {
  const done: string[] = [];
  if (table.rels.length === 0) return done;
  const sample = evenSample(table, CALIBRATION_IMAGES);
  for (const conv of convs) {
    const bnName = conv.replace(/_conv$/, '_bn');
    const bn = model.layers.find((l) => l.name === bnName && l.getClassName() === 'BatchNormalization');
    if (!bn || bnName === conv) continue;
    // Earlier norms are already set, so each convolution sees what the grown network gives it.
    const { mean, variance } = channelMoments(model, model.getLayer(conv).output as tfl.SymbolicTensor, sample);
    const epsilon = (bn as unknown as { epsilon: number }).epsilon;
    const gamma = Float32Array.from(variance, (v) => Math.sqrt(v + epsilon));
    const weights = [gamma, mean, mean, variance].map((w) => tf.tensor1d(w));
    bn.setWeights(weights);
    weights.forEach((w) => w.dispose());
    done.push(bnName);
  }
  return done;
}
