// Camera profiles: which way round a camera's images are (a light background with dark organisms,
// or a dark one with light organisms), their colour and pixel size. Every image is first brought
// to one canonical form, the bright-field one that NDSB and the shipped members use (dark
// organism on a light background, so that inversion makes it bright on a zero background); the
// member's own preparation (padding, scaling, inversion) then applies to that. A bright-field gray
// image passes through untouched, so the shipped members' inputs are what they always were.
import type { GrayImage } from './decode.js';

export type Polarity = 'bright-field' | 'dark-field';

/** The `camera:` section of the config: what a camera gives. */
export interface CameraProfile {
  /** "auto": decided per image from its border pixels. */
  polarity: Polarity | 'auto';
  colour: 'gray' | 'rgb';
  /** Micrometres per pixel; 0: unknown. */
  pixelSizeUm: number;
}

/** The camera the shipped members were trained on (ISIIS, NDSB): bright-field, gray, pixel size not recorded. */
export const NDSB_CAMERA: CameraProfile = { polarity: 'bright-field', colour: 'gray', pixelSizeUm: 0 };

/** Border levels (median) below this are dark-field, above BRIGHT_BORDER bright-field; between, the extremes decide. */
const DARK_BORDER = 64;
const BRIGHT_BORDER = 192;

/** Histogram of the one-pixel border of an image, and its pixel count. */
function borderHistogram(image: Pick<GrayImage, 'gray' | 'width' | 'height'>): { counts: Uint32Array; n: number } {
  const { gray, width: w, height: h } = image;
  const counts = new Uint32Array(256);
  let n = 0;
  const add = (i: number) => {
    counts[gray[i]!]!++;
    n++;
  };
  for (let x = 0; x < w; x++) {
    add(x);
    if (h > 1) add((h - 1) * w + x);
  }
  for (let y = 1; y < h - 1; y++) {
    add(y * w);
    if (w > 1) add(y * w + w - 1);
  }
  return { counts, n };
}

/** The gray level below which `fraction` of the border lies. */
function borderPercentile(hist: { counts: Uint32Array; n: number }, fraction: number): number {
  let seen = 0;
  for (let v = 0; v < 256; v++) {
    seen += hist.counts[v]!;
    if (seen >= fraction * hist.n) return v;
  }
  return 255;
}

/** Median gray level of the one-pixel border of an image: the camera's background level, in practice. */
export function borderLevel(image: Pick<GrayImage, 'gray' | 'width' | 'height'>): number {
  return borderPercentile(borderHistogram(image), 0.5);
}

/**
 * The polarity of one image, from its border: a dark median is dark-field, a light one
 * bright-field. When an organism covers much of the border (a median in between), the border's
 * extremes decide: the background is whichever end (the darkest tenth or the lightest tenth)
 * lies closer to black or to white. (Of the 24,401 NDSB images, all bright-field, every one is
 * found so.)
 */
export function detectPolarity(image: Pick<GrayImage, 'gray' | 'width' | 'height'>): Polarity {
  const hist = borderHistogram(image);
  const median = borderPercentile(hist, 0.5);
  if (median < DARK_BORDER) return 'dark-field';
  if (median > BRIGHT_BORDER) return 'bright-field';
  return borderPercentile(hist, 0.1) < 255 - borderPercentile(hist, 0.9) ? 'dark-field' : 'bright-field';
}

/** An image in the canonical (bright-field) form, the polarity it came in, and its real background level in that form. */
export interface CanonicalImage {
  image: GrayImage;
  polarity: Polarity;
  /** The background's gray level after canonicalisation (near 255): what organism area is measured against. */
  background: number;
}

/**
 * Bring a decoded image to the canonical bright-field form. A bright-field one is returned as it
 * is (the same object, the same bytes). A dark-field one loses its background level (the median
 * of its border: a camera's dark background is rarely 0) and is inverted, 255 - max(0, v - level):
 * its background becomes white like the padding the member's preparation adds, and an organism
 * keeps its contrast against it.
 */
export function canonicalImage(image: GrayImage, polarity: CameraProfile['polarity']): CanonicalImage {
  const actual = polarity === 'auto' ? detectPolarity(image) : polarity;
  if (actual === 'bright-field') return { image, polarity: actual, background: borderLevel(image) };
  const level = borderLevel(image);
  const gray = new Uint8Array(image.gray.length);
  for (let i = 0; i < gray.length; i++) gray[i] = 255 - Math.max(0, image.gray[i]! - level);
  const inverted = { ...image, gray, ...(image.rgb ? { rgb: invertColour(image.rgb, image.width, image.height) } : {}) };
  return { image: inverted, polarity: actual, background: borderLevel(inverted) };
}

/** The colour planes of a dark-field image each inverted as the gray is, against its own border level. */
function invertColour(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  const plane = new Uint8Array(width * height);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane.length; i++) plane[i] = rgb[i * 3 + c]!;
    const level = borderLevel({ gray: plane, width, height });
    for (let i = 0; i < plane.length; i++) out[i * 3 + c] = 255 - Math.max(0, plane[i]! - level);
  }
  return out;
}

/** Gray level a transparent pixel is flattened onto: the camera's background, so that it reads as background. */
export function flattenLevel(polarity: CameraProfile['polarity']): number {
  return polarity === 'dark-field' ? 0 : 255;
}

/** An area in pixels as square micrometres, or undefined when the pixel size is unknown. */
export function areaUm2(areaPx: number, pixelSizeUm: number): number | undefined {
  return pixelSizeUm > 0 ? areaPx * pixelSizeUm * pixelSizeUm : undefined;
}

/** A profile as one short phrase for messages: "dark-field rgb, 10 µm pixels". */
export function describeProfile(p: Partial<CameraProfile>): string {
  const size = p.pixelSizeUm ? `, ${p.pixelSizeUm} µm pixels` : '';
  return `${p.polarity ?? 'bright-field'} ${p.colour ?? 'gray'}${size}`;
}
