// Test-time augmentation on square images (one channel, or R, G, B interleaved), applied to the raw Float32Arrays before
// they become tensors: 90° rotations and flips are index permutations; the diagonal turns (45°,
// 135°, 225°, 315°) resample bilinearly about the centre, as training's rotations do, with the
// background's prepared value where the turned image leaves the square.
import type { EnsembleFile } from './meta.js';
import { PlankwatchError } from '../errors.js';

export type TtaTransform = NonNullable<EnsembleFile['tta']>[number];

export const TTA_TRANSFORMS: readonly TtaTransform[] = ['identity', 'rot90', 'rot180', 'rot270', 'flipH', 'flipV', 'rot45', 'rot135', 'rot225', 'rot315'];

/** Counter-clockwise degrees of the diagonal turns. */
const DIAGONAL: Partial<Record<TtaTransform, number>> = { rot45: 45, rot135: 135, rot225: 225, rot315: 315 };

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
    default:
      throw new PlankwatchError('PW_E_INTERNAL', `${t} is not a permutation of pixels`);
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

/**
 * Bilinear sampling of a turn by `degrees` counter-clockwise about the image centre: for output
 * pixel i, the four input pixels index[4i .. 4i+3] (−1 outside the image) and their weights.
 * At 90° it takes exactly the pixels of the rot90 permutation.
 */
export function rotationSampler(size: number, degrees: number): { index: Int32Array; weight: Float32Array } {
  const area = size * size;
  const index = new Int32Array(4 * area);
  const weight = new Float32Array(4 * area);
  const a = (degrees * Math.PI) / 180;
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  const c = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x - c;
      const v = y - c;
      // the input point that lands on (x, y): (u, v) turned back (rows grow downwards)
      const sx = c + u * cos - v * sin;
      const sy = c + u * sin + v * cos;
      const x0 = Math.floor(sx + 1e-9);
      const y0 = Math.floor(sy + 1e-9);
      const fx = Math.max(0, sx - x0);
      const fy = Math.max(0, sy - y0);
      const i = 4 * (y * size + x);
      const corners: [number, number, number][] = [
        [x0, y0, (1 - fx) * (1 - fy)],
        [x0 + 1, y0, fx * (1 - fy)],
        [x0, y0 + 1, (1 - fx) * fy],
        [x0 + 1, y0 + 1, fx * fy],
      ];
      corners.forEach(([cx, cy, w], k) => {
        index[i + k] = cx >= 0 && cy >= 0 && cx < size && cy < size ? cy * size + cx : -1;
        weight[i + k] = w;
      });
    }
  }
  return { index, weight };
}

const samplers = new Map<string, { index: Int32Array; weight: Float32Array }>();

/** rotationSampler for a diagonal turn, cached per (transform, size) as permutation() is. */
function diagonalSampler(t: TtaTransform, degrees: number, size: number): { index: Int32Array; weight: Float32Array } {
  const key = `${t}:${size}`;
  let sampler = samplers.get(key);
  if (!sampler) {
    sampler = rotationSampler(size, degrees);
    samplers.set(key, sampler);
  }
  return sampler;
}

/**
 * Transform every image of a batch (count images of size x size, row-major, one after another;
 * with `channels` 3 each pixel is R, G, B interleaved, and the three move together).
 * `fill`: the prepared value of the background, for the corners a diagonal turn brings in.
 */
export function transformBatch(pixels: Float32Array, size: number, t: TtaTransform, fill = 0, channels = 1): Float32Array {
  if (t === 'identity') return pixels;
  const area = size * size;
  const stride = area * channels;
  const out = new Float32Array(pixels.length);
  const degrees = DIAGONAL[t];
  if (degrees !== undefined) {
    const { index, weight } = diagonalSampler(t, degrees, size);
    for (let offset = 0; offset < pixels.length; offset += stride) {
      for (let i = 0; i < area; i++) {
        for (let c = 0; c < channels; c++) {
          let v = 0;
          for (let k = 4 * i; k < 4 * i + 4; k++) v += weight[k]! * (index[k]! >= 0 ? pixels[offset + index[k]! * channels + c]! : fill);
          out[offset + i * channels + c] = v;
        }
      }
    }
    return out;
  }
  const perm = permutation(t, size);
  for (let offset = 0; offset < pixels.length; offset += stride) {
    for (let i = 0; i < area; i++) for (let c = 0; c < channels; c++) out[offset + i * channels + c] = pixels[offset + perm[i]! * channels + c]!;
  }
  return out;
}

/**
 * The batch repeated once per transform, transformed: [t0(all images), t1(all images), ...].
 * The model then sees one batch of transforms.length * count images.
 */
export function expandBatch(pixels: Float32Array, size: number, transforms: readonly TtaTransform[], fill = 0, channels = 1): Float32Array {
  if (transforms.length === 1 && transforms[0] === 'identity') return pixels;
  const out = new Float32Array(pixels.length * transforms.length);
  transforms.forEach((t, k) => out.set(transformBatch(pixels, size, t, fill, channels), k * pixels.length));
  return out;
}
