// Camera frames composed from real NDSB ROIs pasted at known positions on a synthetic background,
// for the segmentation tests and `npm run bench`:
// uneven illumination (vignetting and a gradient), line-scan banding (a gain per column), and
// sensor noise. The ROIs are dark organisms on a white background; they are composited as light
// transmission (frame = background × ROI / 255), so their white surround vanishes into the
// background exactly as the organism's own shadow would. Each organism's true box is the box of its
// pixels darker than TRUTH_GREY in the ROI (specks of dust left out), moved to where it was pasted.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { mulberry32 } from '../learn/random.js';

export const TRUTH_GREY = 240;
export const SPECK_PX = 10;

export interface Roi {
  name: string;
  gray: Uint8Array;
  width: number;
  height: number;
  /** Box of the organism inside the ROI image. */
  box: Box;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Scene {
  width: number;
  height: number;
  /** Illumination: vignetting depth (0..1), horizontal gradient (0..1), column banding (0..1). */
  vignette: number;
  gradient: number;
  banding: number;
  /** Standard deviation of the Gaussian noise, grey levels. */
  noise: number;
  /** Background grey at the centre (bright-field), or of the dark background (dark-field). */
  level: number;
  polarity: 'bright-field' | 'dark-field';
  /** Where the organisms go, and the noise. */
  seed: number;
  /** The illumination's random part (banding): the same for every frame of one camera. */
  lightSeed: number;
}

export interface Composed {
  gray: Uint8Array;
  width: number;
  height: number;
  truth: (Box & { name: string })[];
}

/**
 * Up to `limit` images from `dataDir` (class folders of images, the NDSB layout), taken round-robin
 * over the classes so that every shape is represented.
 */
export function roiFiles(dataDir: string, limit = 400): string[] {
  const lists = readdirSync(dataDir, { withFileTypes: true })
    .filter((c) => c.isDirectory())
    .map((c) => c.name)
    .sort()
    .map((c) => readdirSync(path.join(dataDir, c)).filter((f) => /\.(jpe?g|png|tiff?)$/i.test(f)).sort().map((f) => path.join(dataDir, c, f)));
  const files: string[] = [];
  for (let i = 0; files.length < limit && lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length && files.length < limit) files.push(l[i]!);
  return files;
}

export async function loadRois(files: string[]): Promise<Roi[]> {
  const rois: Roi[] = [];
  for (const file of files) {
    const { data, info } = await sharp(file).grayscale().raw().toBuffer({ resolveWithObject: true });
    const gray = new Uint8Array(data.buffer, data.byteOffset, info.width * info.height);
    const box = darkBox(gray, info.width, info.height);
    if (box) rois.push({ name: path.relative(path.dirname(path.dirname(file)), file), gray, width: info.width, height: info.height, box });
  }
  return rois;
}

/**
 * Box of the organism in an ROI image: its pixels darker than TRUTH_GREY, leaving out specks (dark
 * groups of fewer than SPECK_PX pixels, 8-connected: dust and noise in the camera's crop).
 */
function darkBox(gray: Uint8Array, width: number, height: number): Box | undefined {
  const seen = new Uint8Array(gray.length);
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let start = 0; start < gray.length; start++) {
    if (seen[start] || gray[start]! >= TRUTH_GREY) continue;
    const group: number[] = [start];
    seen[start] = 1;
    for (let k = 0; k < group.length; k++) {
      const i = group[k]!;
      const x = i % width;
      const y = (i - x) / width;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const nx = x + dx, ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
        const j = ny * width + nx;
        if (!seen[j] && gray[j]! < TRUTH_GREY) {
          seen[j] = 1;
          group.push(j);
        }
      }
    }
    if (group.length < SPECK_PX) continue;
    for (const i of group) {
      const x = i % width;
      const y = (i - x) / width;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return x1 < 0 ? undefined : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/** The illumination (before organisms and noise), as floats. Same scene settings: same background. */
export function illumination(scene: Scene): Float32Array {
  const { width, height } = scene;
  const rand = mulberry32(scene.lightSeed);
  const columnGain = new Float32Array(width);
  for (let x = 0; x < width; x++) columnGain[x] = 1 + scene.banding * (0.6 * Math.sin(x / 37) + 0.4 * (rand() * 2 - 1));
  const out = new Float32Array(width * height);
  const cx = width / 2;
  const cy = height / 2;
  const r2max = cx * cx + cy * cy;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const r2 = ((x - cx) ** 2 + (y - cy) ** 2) / r2max;
      const light = 1 - scene.vignette * r2 - scene.gradient * (x / width);
      out[y * width + x] = scene.level * light * columnGain[x]!;
    }
  }
  return out;
}

/**
 * Pastes `count` ROIs (drawn from `rois` with the scene's seed) at random places that keep their
 * whole images `gap` pixels apart and inside the frame.
 */
export function compose(scene: Scene, rois: Roi[], count: number, gap = 12): Composed {
  const { width, height } = scene;
  const rand = mulberry32(scene.seed);
  const light = illumination(scene);
  // Transmission of each pixel (1: clear water).
  const transmission = new Float32Array(width * height).fill(1);
  const placed: Box[] = [];
  const truth: Composed['truth'] = [];
  for (let tries = 0; truth.length < count && tries < count * 200; tries++) {
    const roi = rois[Math.floor(rand() * rois.length)]!;
    if (roi.width + 2 * gap >= width || roi.height + 2 * gap >= height) continue;
    const x = gap + Math.floor(rand() * (width - roi.width - 2 * gap));
    const y = gap + Math.floor(rand() * (height - roi.height - 2 * gap));
    const box = { x, y, width: roi.width, height: roi.height };
    if (placed.some((p) => overlaps(p, box, gap))) continue;
    placed.push(box);
    for (let r = 0; r < roi.height; r++) {
      for (let c = 0; c < roi.width; c++) transmission[(y + r) * width + x + c] = roi.gray[r * roi.width + c]! / 255;
    }
    truth.push({ name: roi.name, x: x + roi.box.x, y: y + roi.box.y, width: roi.box.width, height: roi.box.height });
  }
  const noise = mulberry32(scene.seed ^ 0xbeef);
  const gray = new Uint8Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    const l = light[i]!;
    // Dark-field: organisms scatter light, brighter where the ROI is darker.
    const v = scene.polarity === 'bright-field' ? l * transmission[i]! : l + (1 - transmission[i]!) * 255;
    gray[i] = Math.max(0, Math.min(255, Math.round(v + scene.noise * gaussian(noise))));
  }
  return { gray, width, height, truth };
}

function overlaps(a: Box, b: Box, gap: number): boolean {
  return a.x < b.x + b.width + gap && b.x < a.x + a.width + gap && a.y < b.y + b.height + gap && b.y < a.y + a.height + gap;
}

export function iou(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

export interface Score {
  truths: number;
  detections: number;
  matched: number;
  recall: number;
  precision: number;
  meanIou: number;
  /** Matched boxes with IoU >= 0.8. */
  iouAbove08: number;
  misses: string[];
}

/**
 * Greedy one-to-one matching by IoU (>= 0.5). Only truths whose longer side is at least `minSide`
 * count; a detection matched to a smaller truth counts neither way.
 */
export function score(truth: Box[] & { name?: string }[], detections: Box[], minSide = 20): Score {
  const pairs: { t: number; d: number; v: number }[] = [];
  for (let t = 0; t < truth.length; t++) for (let d = 0; d < detections.length; d++) {
    const v = iou(truth[t]!, detections[d]!);
    if (v >= 0.5) pairs.push({ t, d, v });
  }
  pairs.sort((a, b) => b.v - a.v);
  const tUsed = new Map<number, number>();
  const dUsed = new Set<number>();
  for (const p of pairs) {
    if (tUsed.has(p.t) || dUsed.has(p.d)) continue;
    tUsed.set(p.t, p.v);
    dUsed.add(p.d);
  }
  const big = (b: Box) => Math.max(b.width, b.height) >= minSide;
  let truths = 0, matched = 0, iouSum = 0, above = 0, neutral = 0;
  const misses: string[] = [];
  for (let t = 0; t < truth.length; t++) {
    const v = tUsed.get(t);
    if (!big(truth[t]!)) {
      if (v !== undefined) neutral += 1;
      continue;
    }
    truths += 1;
    if (v === undefined) {
      misses.push(`${(truth[t] as { name?: string }).name ?? t} ${JSON.stringify(truth[t])}`);
      continue;
    }
    matched += 1;
    iouSum += v;
    if (v >= 0.8) above += 1;
  }
  // Unmatched detections that lie on a small truth organism are not false: it is there.
  let smallHits = 0;
  for (let d = 0; d < detections.length; d++) {
    if (dUsed.has(d)) continue;
    if (truth.some((t) => !big(t) && iou(t, detections[d]!) > 0)) smallHits += 1;
  }
  const counted = detections.length - neutral - smallHits;
  return {
    truths,
    detections: counted,
    matched,
    recall: truths ? matched / truths : 1,
    precision: counted ? matched / counted : 1,
    meanIou: matched ? iouSum / matched : 0,
    iouAbove08: matched ? above / matched : 0,
    misses,
  };
}
