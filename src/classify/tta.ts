// Test-time augmentation on square one-channel images: 90° rotations and flips are index
// permutations, so they are applied to the raw Float32Arrays before they become tensors.
import type { EnsembleFile } from './meta.js';

export type TtaTransform = NonNullable<EnsembleFile['tta']>[number];

export const TTA_TRANSFORMS: readonly TtaTransform[] = ['identity', 'rot90', 'rot180', 'rot270', 'flipH', 'flipV'];

/**
 * For an output pixel (y, x) of a size x size image, the input pixel it takes.
 * rot90 turns the image a quarter counter-clockwise (as numpy.rot90), flipH mirrors left-right,
 * flipV mirrors top-bottom.
 */
function source(t: TtaTransform, y: number, x: number, n: number): number {
  const last = n - 1;
  switch (t) {
    case 'identity':
      return y * n + x;
    case 'rot90':
      return x * n + (last - y);
    case 'rot180':
      return (last - y) * n + (last - x);
    case 'rot270':
      return (last - x) * n + y;
    case 'flipH':
      return y * n + (last - x);
    case 'flipV':
      return (last - y) * n + x;
  }
}

const permutations = new Map<string, Uint32Array>();

/** out[i] = in[perm[i]] for one image; cached per (transform, size). */
export function permutation(t: TtaTransform, size: number): Uint32Array {
  const key = `${t}:${size}`;
  let perm = permutations.get(key);
  if (!perm) {
    perm = new Uint32Array(size * size);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) perm[y * size + x] = source(t, y, x, size);
    permutations.set(key, perm);
  }
  return perm;
}

/** Transform every image of a batch (count images of size x size, row-major, one after another). */
export function transformBatch(pixels: Float32Array, size: number, t: TtaTransform): Float32Array {
  if (t === 'identity') return pixels;
  const perm = permutation(t, size);
  const area = size * size;
  const out = new Float32Array(pixels.length);
  for (let offset = 0; offset < pixels.length; offset += area) {
    for (let i = 0; i < area; i++) out[offset + i] = pixels[offset + perm[i]!]!;
  }
  return out;
}

/**
 * The batch repeated once per transform, transformed: [t0(all images), t1(all images), ...].
 * The model then sees one batch of transforms.length * count images.
 */
export function expandBatch(pixels: Float32Array, size: number, transforms: readonly TtaTransform[]): Float32Array {
  if (transforms.length === 1 && transforms[0] === 'identity') return pixels;
  const out = new Float32Array(pixels.length * transforms.length);
  transforms.forEach((t, k) => out.set(transformBatch(pixels, size, t), k * pixels.length));
  return out;
}
