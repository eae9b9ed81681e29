// Test-time transforms (the dihedral moves that leave a plankton image meaningful), on a batch
// tensor for inference and on one prepared image for code that works on Float32Arrays.
import * as tf from '@tensorflow/tfjs-core';

export type TtaTransform = 'identity' | 'rot90' | 'rot180' | 'rot270' | 'flipH' | 'flipV';

export const TTA_TRANSFORMS: TtaTransform[] = ['identity', 'rot90', 'rot180', 'rot270', 'flipH', 'flipV'];

export function isTtaTransform(name: string): name is TtaTransform {
  return (TTA_TRANSFORMS as string[]).includes(name);
}

/** Transform a batch [n, h, w, c] (square images). Rotations are counter-clockwise. */
export function transformBatch(x: tf.Tensor4D, t: TtaTransform): tf.Tensor4D {
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
  }
}

/** The same transform on one size x size image in row-major order. */
export function transformImage(pixels: Float32Array, size: number, t: TtaTransform): Float32Array {
  if (t === 'identity') return pixels.slice();
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sy = y;
      let sx = x;
      if (t === 'flipH') sx = size - 1 - x;
      else if (t === 'flipV') sy = size - 1 - y;
      else if (t === 'rot180') {
        sy = size - 1 - y;
        sx = size - 1 - x;
      } else if (t === 'rot90') {
        sy = x;
        sx = size - 1 - y;
      } else if (t === 'rot270') {
        sy = size - 1 - x;
        sx = y;
      }
      out[y * size + x] = pixels[sy * size + sx]!;
    }
  }
  return out;
}
