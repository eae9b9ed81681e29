// Test-time transforms (the moves that leave a plankton image meaningful: quarter and diagonal
// turns, mirrors), on a batch tensor for evaluation and on one prepared image for code that works
// on Float32Arrays. The pixel arithmetic is the daemon's own (../classify/tta.ts), so that a view
// evaluated here is the view the daemon computes.
import * as tf from '@tensorflow/tfjs-core';
import { TTA_TRANSFORMS as TRANSFORMS, transformBatch as transformPixels, type TtaTransform } from '../classify/tta.js';

export type { TtaTransform };

export const TTA_TRANSFORMS: TtaTransform[] = [...TRANSFORMS];

export function isTtaTransform(name: string): name is TtaTransform {
  return (TTA_TRANSFORMS as string[]).includes(name);
}

/**
 * Transform a batch [n, h, w, channels] (square images). Rotations are counter-clockwise. `fill`: the
 * prepared value of the background, for the corners a diagonal turn brings in.
 */
export function transformBatch(x: tf.Tensor4D, t: TtaTransform, fill = 0): tf.Tensor4D {
  switch (t) {
    case 'identity':
      return x;
    case 'flipH':
      return tf.reverse(x, 2);
    case 'flipV':
      return tf.reverse(x, 1);
    case 'rot180':
      return tf.reverse(x, [1, 2]);
    case 'rot90':
      return tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 1);
    case 'rot270':
      return tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 2);
    default:
      return tf.tensor4d(transformPixels(x.dataSync() as Float32Array, x.shape[1], t, fill, x.shape[3]), x.shape);
  }
}

/** The same transform on one size x size image in row-major order (a new array). */
export function transformImage(pixels: Float32Array, size: number, t: TtaTransform, fill = 0): Float32Array {
  return t === 'identity' ? pixels.slice() : transformPixels(pixels, size, t, fill);
}
