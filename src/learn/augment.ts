// Online augmentation of prepared images (size x size bytes per channel, the prepared value times 255):
// one random affine map per image (rotation over the full circle — plankton have no up — flip,
// zoom, shear, small shift), then optional blur and brightness. Pure, seeded, allocation-light.

export interface AugmentOptions {
  /** Maximum rotation in degrees either way (180: any angle). 0 disables. */
  rotate: number;
  /** Mirror with probability 1/2. */
  flip: boolean;
  /** Zoom factor drawn log-uniformly from [1/zoom, zoom]. 1 disables. */
  zoom: number;
  /** Maximum shear in degrees either way. */
  shear: number;
  /** Maximum shift in pixels either way. */
  shift: number;
  /** Probability of a 3x3 box blur. */
  blur: number;
  /** Brightness (contrast gain) factor drawn from [1 - b, 1 + b]. 0 disables. */
  brightness: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { rotate: 180, flip: true, zoom: 1.15, shear: 8, shift: 3, blur: 0.1, brightness: 0.15 };
/**
 * Fine-tuning a trained network on a new camera: the same turns and mirrors (plankton have no up),
 * milder zoom and shear (its features already cover those; strong distortion only slows the
 * adaptation), more blur and contrast change (another camera's focus and gain).
 */
export const FINETUNE_AUGMENT: AugmentOptions = { rotate: 180, flip: true, zoom: 1.1, shear: 5, shift: 3, blur: 0.15, brightness: 0.25 };
export const NO_AUGMENT: AugmentOptions = { rotate: 0, flip: false, zoom: 1, shear: 0, shift: 0, blur: 0, brightness: 0 };

/**
 * Write an augmented copy of `src` (size² · channels bytes, channels interleaved) into `out` (as
 * many floats in the prepared range). `fill` is the prepared value of the background (0 for
 * inverted images). Every channel of an image takes the same map, blur and gain.
 */
export function augmentInto(src: Uint8Array, size: number, out: Float32Array, rng: () => number, options: AugmentOptions, fill: number, channels = 1): void {
  const angle = ((rng() * 2 - 1) * options.rotate * Math.PI) / 180;
  const flip = options.flip && rng() < 0.5 ? -1 : 1;
  const zoom = options.zoom > 1 ? Math.exp((rng() * 2 - 1) * Math.log(options.zoom)) : 1;
  const shear = ((rng() * 2 - 1) * options.shear * Math.PI) / 180;
  const dx = (rng() * 2 - 1) * options.shift;
  const dy = (rng() * 2 - 1) * options.shift;
  const blur = rng() < options.blur;
  const gain = options.brightness > 0 ? 1 + (rng() * 2 - 1) * options.brightness : 1;

  // Forward map A = R(angle) · Shear · Zoom · Flip about the centre; sample src at A⁻¹(p).
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const t = Math.tan(shear);
  // M = R · [[1, t], [0, 1]] · diag(zoom·flip, zoom)
  const m00 = cos * zoom * flip;
  const m01 = (cos * t - sin) * zoom;
  const m10 = sin * zoom * flip;
  const m11 = (sin * t + cos) * zoom;
  const det = m00 * m11 - m01 * m10;
  const i00 = m11 / det;
  const i01 = -m01 / det;
  const i10 = -m10 / det;
  const i11 = m00 / det;
  const c = (size - 1) / 2;
  const scale = 1 / 255;
  for (let y = 0; y < size; y++) {
    const py = y - c - dy;
    for (let x = 0; x < size; x++) {
      const px = x - c - dx;
      const sx = i00 * px + i01 * py + c;
      const sy = i10 * px + i11 * py + c;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const inside = x0 >= 0 && y0 >= 0 && x0 + 1 < size && y0 + 1 < size;
      for (let k = 0; k < channels; k++) {
        let v: number;
        if (inside) {
          const o = (y0 * size + x0) * channels + k;
          const row = size * channels;
          v = ((src[o]! * (1 - fx) + src[o + channels]! * fx) * (1 - fy) + (src[o + row]! * (1 - fx) + src[o + row + channels]! * fx) * fy) * scale;
        } else {
          const s = (xx: number, yy: number) => (xx >= 0 && yy >= 0 && xx < size && yy < size ? src[(yy * size + xx) * channels + k]! * scale : fill);
          v = (s(x0, y0) * (1 - fx) + s(x0 + 1, y0) * fx) * (1 - fy) + (s(x0, y0 + 1) * (1 - fx) + s(x0 + 1, y0 + 1) * fx) * fy;
        }
        out[(y * size + x) * channels + k] = v;
      }
    }
  }
  if (blur) boxBlur3(out, size, channels);
  if (gain !== 1) for (let i = 0; i < size * size * channels; i++) out[i] = fill + (out[i]! - fill) * gain;
}

/** Copy without augmentation (bytes to prepared floats). */
export function copyInto(src: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < src.length; i++) out[i] = src[i]! / 255;
}

function boxBlur3(img: Float32Array, size: number, channels: number): void {
  const copy = img.slice();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let k = 0; k < channels; k++) {
        let sum = 0;
        let n = 0;
        for (let yy = Math.max(0, y - 1); yy <= Math.min(size - 1, y + 1); yy++) {
          for (let xx = Math.max(0, x - 1); xx <= Math.min(size - 1, x + 1); xx++) {
            sum += copy[(yy * size + xx) * channels + k]!;
            n++;
          }
        }
        img[(y * size + x) * channels + k] = sum / n;
      }
    }
  }
}
