// Geometry and normalisation, in plain code so that training and inference share every step:
// pad to a square on the background without distorting the organism, scale to the member's
// input size (never enlarging small organisms when noUpscale is set: size carries taxonomic
// information), then normalise.
import type { PreparedImage, PreprocessSpec } from '../types.js';
import type { GrayImage } from './decode.js';

export const DEFAULT_PREPROCESS: PreprocessSpec = { background: 255, noUpscale: true, invert: true };

/**
 * The name of one prepared input: its size and how it was prepared. Members that share it share
 * one prepared image per frame; members of one size prepared differently (one keeps organisms'
 * size, one enlarges them to fill the input) each get their own. "64" for the default preparation.
 */
export function inputKey(size: number, spec: PreprocessSpec, channels: 1 | 3 = 1): string {
  const parts = [String(size)];
  if (channels === 3) parts.push('rgb');
  if (!spec.noUpscale) parts.push('fit');
  if (!spec.invert) parts.push('plain');
  if (spec.background !== DEFAULT_PREPROCESS.background) parts.push(`bg${spec.background}`);
  return parts.join('-');
}

/** The prepared value of the background (what prepare() fills the canvas with). */
export function preparedBackground(spec: PreprocessSpec): number {
  return spec.invert ? (255 - spec.background) / 255 : spec.background / 255;
}

/** Pixels darker than background by more than this count towards the organism's area. */
const AREA_THRESHOLD = 25;

/** Organism area in pixels: the pixels that differ clearly from the background. */
export function organismArea(image: GrayImage, background: number): number {
  let area = 0;
  const { gray } = image;
  for (let i = 0; i < gray.length; i++) if (Math.abs(gray[i]! - background) > AREA_THRESHOLD) area++;
  return area;
}

/**
 * Place the image centred on a size x size canvas of the background colour, scaled by
 * min(1, size / longest side) (or exactly to fit when noUpscale is false), and normalise to floats.
 * With 3 channels, each of R, G and B (image.rgb; a gray image's gray thrice) goes through the same
 * steps, and the prepared image holds them interleaved.
 */
export function prepare(image: GrayImage, size: number, spec: PreprocessSpec, channels: 1 | 3 = 1): PreparedImage {
  if (channels === 1) return { pixels: preparePlane(image.gray, image.width, image.height, size, spec), size };
  const n = image.width * image.height;
  const plane = new Uint8Array(n);
  const pixels = new Float32Array(size * size * 3);
  for (let c = 0; c < 3; c++) {
    if (image.rgb) for (let i = 0; i < n; i++) plane[i] = image.rgb[i * 3 + c]!;
    const one = preparePlane(image.rgb ? plane : image.gray, image.width, image.height, size, spec);
    for (let i = 0; i < one.length; i++) pixels[i * 3 + c] = one[i]!;
  }
  return { pixels, size, channels };
}

function preparePlane(gray: Uint8Array, width: number, height: number, size: number, spec: PreprocessSpec): Float32Array {
  const longest = Math.max(width, height);
  const scale = longest > size || !spec.noUpscale ? size / longest : 1;
  const outW = Math.max(1, Math.min(size, Math.round(width * scale)));
  const outH = Math.max(1, Math.min(size, Math.round(height * scale)));
  const scaled = resize(gray, width, height, outW, outH);

  const canvas = new Uint8Array(size * size).fill(spec.background);
  const left = Math.floor((size - outW) / 2);
  const top = Math.floor((size - outH) / 2);
  for (let y = 0; y < outH; y++) canvas.set(scaled.subarray(y * outW, (y + 1) * outW), (top + y) * size + left);

  const pixels = new Float32Array(size * size);
  if (spec.invert) for (let i = 0; i < pixels.length; i++) pixels[i] = (255 - canvas[i]!) / 255;
  else for (let i = 0; i < pixels.length; i++) pixels[i] = canvas[i]! / 255;
  return pixels;
}

/** Area-averaging resize for shrinking, bilinear for enlarging; identity when sizes match. */
export function resize(src: Uint8Array, w: number, h: number, outW: number, outH: number): Uint8Array {
  if (outW === w && outH === h) return src;
  const out = new Uint8Array(outW * outH);
  if (outW <= w && outH <= h) {
    const sx = w / outW;
    const sy = h / outH;
    // Each output column's source columns and their weights are the same on every row: worked out
    // once (the same numbers, summed in the same order, as computing them for each pixel).
    const span = Math.ceil(sx) + 1;
    const xFrom = new Int32Array(outW);
    const xTo = new Int32Array(outW);
    const xWeight = new Float64Array(outW * span);
    for (let ox = 0; ox < outW; ox++) {
      const x0 = ox * sx;
      const x1 = x0 + sx;
      xFrom[ox] = Math.floor(x0);
      xTo[ox] = Math.min(w, Math.ceil(x1));
      for (let x = xFrom[ox]!; x < xTo[ox]!; x++) xWeight[ox * span + x - xFrom[ox]!] = Math.min(x + 1, x1) - Math.max(x, x0);
    }
    for (let oy = 0; oy < outH; oy++) {
      const y0 = oy * sy;
      const y1 = y0 + sy;
      const yFrom = Math.floor(y0);
      const yTo = Math.min(h, Math.ceil(y1));
      for (let ox = 0; ox < outW; ox++) {
        const from = xFrom[ox]!;
        const to = xTo[ox]!;
        const weights = ox * span - from;
        let sum = 0;
        let weight = 0;
        for (let y = yFrom; y < yTo; y++) {
          const wy = Math.min(y + 1, y1) - Math.max(y, y0);
          const row = y * w;
          for (let x = from; x < to; x++) {
            const wx = xWeight[weights + x]!;
            sum += src[row + x]! * wx * wy;
            weight += wx * wy;
          }
        }
        out[oy * outW + ox] = Math.round(sum / weight);
      }
    }
    return out;
  }
  for (let oy = 0; oy < outH; oy++) {
    const fy = Math.min(h - 1, Math.max(0, ((oy + 0.5) * h) / outH - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const dy = fy - y0;
    for (let ox = 0; ox < outW; ox++) {
      const fx = Math.min(w - 1, Math.max(0, ((ox + 0.5) * w) / outW - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const dx = fx - x0;
      const top = src[y0 * w + x0]! * (1 - dx) + src[y0 * w + x1]! * dx;
      const bottom = src[y1 * w + x0]! * (1 - dx) + src[y1 * w + x1]! * dx;
      out[oy * outW + ox] = Math.round(top * (1 - dy) + bottom * dy);
    }
  }
  return out;
}
