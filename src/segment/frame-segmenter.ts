// Cutting one camera frame into ROIs with OpenCV: flat-field against the background, threshold the
// contrast, close small gaps, label connected components with their stats, filter them, measure each
// organism from its image moments, and crop it with a margin from the flat-fielded frame.
import type { Mat } from '@techstark/opencv-js';
import { BackgroundModel } from './background.js';
import type { Cv } from './opencv.js';
import type { Polarity, RoiGeometry, SegmentedFrame, SegmentSettings } from './settings.js';

/** The images one pass makes; delete with `release`. */
interface Pass {
  background: Mat;
  /** Flat-fielded frame, 8 bits: bright-field background at 255, dark-field at 0. */
  flat: Mat;
  /** Organism pixels (255) after the closing. */
  mask: Mat;
}

/**
 * Bright-field: where the background is darker than this fraction of its mean, the frame is not lit,
 * and no organism is looked for there nor within localObjectPx of it.
 */
const UNLIT_FRACTION = 0.25;

/**
 * The running and per-column backgrounds take in one camera frame of this many (each weighing as
 * much more): the estimate changes over backgroundFrames frames as before, at a fraction of the cost.
 */
export const FOLD_EVERY = 2;

/** Organisms are grouped on a copy of the mask this many times smaller (see `components`). */
const GROUP_SCALE = 2;

/** Segments the camera frames of one stream (one watch folder); keeps its background between frames. */
export class FrameSegmenter {
  private readonly cv: Cv;
  private readonly settings: SegmentSettings;
  private readonly background: BackgroundModel;
  /** Camera frames segmented since the background was started. */
  private frames = 0;

  constructor(cv: Cv, settings: SegmentSettings) {
    this.cv = cv;
    this.settings = settings;
    this.background = new BackgroundModel(cv, { method: settings.background, frames: settings.backgroundFrames / FOLD_EVERY, localObjectPx: settings.localObjectPx });
  }

  /** Segment one 8-bit gray frame (row-major, width × height). */
  segment(gray: Uint8Array, width: number, height: number): SegmentedFrame {
    const cv = this.cv;
    const started = performance.now();
    const src = new cv.Mat(height, width, cv.CV_8UC1);
    let pass: Pass | undefined;
    try {
      src.data.set(gray);
      const polarity = this.settings.polarity === 'auto' ? guessPolarity(gray) : this.settings.polarity;
      pass = this.pass(src, polarity);
      const first = this.background.fresh && this.settings.background !== 'local';
      if (first) this.frames = 0;
      if (first) {
        // No history yet: fold this frame in without its organisms, then segment it again.
        this.foldIn(src, pass);
        release(pass);
        pass = this.pass(src, polarity);
      }
      const found = this.components(pass);
      if (!first && ++this.frames % FOLD_EVERY === 0) this.foldIn(src, pass);
      return { width, height, polarity, backgroundGrey: cv.mean(pass.background)[0] ?? 0, ...found, ms: performance.now() - started };
    } finally {
      if (pass) release(pass);
      src.delete();
    }
  }

  dispose(): void {
    this.background.dispose();
  }

  private pass(src: Mat, polarity: Polarity): Pass {
    const cv = this.cv;
    const background = this.background.estimate(src);
    const flat = new cv.Mat();
    const mask = new cv.Mat();
    try {
      // All in 8 bits: the background is CV_8U, OpenCV rounds and saturates each result to 0..255.
      if (polarity === 'bright-field') {
        // Transmission: frame / background, background at 255 (OpenCV gives 0 where it is 0).
        cv.divide(src, background, flat, 255, cv.CV_8U);
        // Outside the lit field (the dark corners of a round window, a dead lamp segment) there
        // is nothing to see, only noise divided by almost nothing; and near it the background,
        // smoothed across the rim, is wrong. Both are taken as clear water.
        const { mean, min } = sampleStats(background.data);
        const unlit = UNLIT_FRACTION * mean;
        if (min < unlit) {
          cv.threshold(background, mask, unlit, 255, cv.THRESH_BINARY_INV);
          const k = 2 * Math.ceil(this.settings.localObjectPx / 2) + 1;
          const se = cv.getStructuringElement(cv.MORPH_RECT, new cv.Size(k, k));
          cv.dilate(mask, mask, se);
          se.delete();
          flat.setTo(new cv.Scalar(255), mask);
        }
      } else {
        cv.subtract(src, background, flat);
      }
      // Contrast to the background: how much darker (bright-field) or brighter (dark-field).
      if (polarity === 'bright-field') cv.bitwise_not(flat, mask);
      else flat.copyTo(mask);
      cv.GaussianBlur(mask, mask, new cv.Size(3, 3), 0, 0, cv.BORDER_REPLICATE);
      cv.threshold(mask, mask, this.settings.threshold, 255, cv.THRESH_BINARY);
      if (this.settings.closePx > 0) {
        const k = 2 * this.settings.closePx + 1;
        // A square: OpenCV applies it as two one-dimensional passes, several times faster than a disc.
        const se = cv.getStructuringElement(cv.MORPH_RECT, new cv.Size(k, k));
        cv.morphologyEx(mask, mask, cv.MORPH_CLOSE, se, new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT, new cv.Scalar(0));
        se.delete();
      }
      return { background, flat, mask };
    } catch (err) {
      background.delete();
      flat.delete();
      mask.delete();
      throw err;
    }
  }

  /** Background estimate updated with this frame, its organisms (and a halo around them) left out. */
  private foldIn(src: Mat, pass: Pass): void {
    if (this.settings.background === 'local') return; // no history to keep
    const cv = this.cv;
    const halo = new cv.Mat();
    const k = 2 * (this.settings.closePx + 3) + 1;
    const se = cv.getStructuringElement(cv.MORPH_RECT, new cv.Size(k, k));
    try {
      cv.dilate(pass.mask, halo, se);
      this.background.update(src, halo, pass.background);
    } finally {
      se.delete();
      halo.delete();
    }
  }

  /**
   * Organisms: the connected components (OpenCV) of the mask grown by mergePx, so that the parts of
   * one organism (a copepod's antennae, a jelly's tentacles) make one ROI; each measured on the
   * mask's own (full-resolution) pixels, filtered, and cropped.
   */
  private components(pass: Pass): Pick<SegmentedFrame, 'components' | 'rejected' | 'rois' | 'crops'> {
    const cv = this.cv;
    const s = this.settings;
    const grown = new cv.Mat();
    const labels = new cv.Mat();
    const stats = new cv.Mat();
    const centroids = new cv.Mat();
    try {
      // Grouped on a copy GROUP_SCALE times smaller (each cell set where any of its pixels is):
      // growing and labelling there costs a quarter of doing it on the whole frame.
      const W = pass.mask.cols;
      const H = pass.mask.rows;
      const sw = Math.ceil(W / GROUP_SCALE);
      const sh = Math.ceil(H / GROUP_SCALE);
      if (sw * GROUP_SCALE !== W || sh * GROUP_SCALE !== H) {
        cv.copyMakeBorder(pass.mask, grown, 0, sh * GROUP_SCALE - H, 0, sw * GROUP_SCALE - W, cv.BORDER_CONSTANT, new cv.Scalar(0));
        cv.resize(grown, grown, new cv.Size(sw, sh), 0, 0, cv.INTER_AREA);
      } else cv.resize(pass.mask, grown, new cv.Size(sw, sh), 0, 0, cv.INTER_AREA);
      cv.threshold(grown, grown, 0, 255, cv.THRESH_BINARY);
      if (s.mergePx > 0) {
        // A cell's own extent already joins parts up to a few pixels apart.
        // A square (two one-dimensional passes in OpenCV, several times faster than a disc).
        const k = 2 * Math.round(s.mergePx / GROUP_SCALE) + 1;
        const se = cv.getStructuringElement(cv.MORPH_RECT, new cv.Size(k, k));
        cv.dilate(grown, grown, se, new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT, new cv.Scalar(0));
        se.delete();
      }
      const n = cv.connectedComponentsWithStats(grown, labels, stats, centroids, 8, cv.CV_32S);
      const parts = accumulate(labels.data32S, sw, pass.mask.data, pass.flat.data, W, n);
      const rejected = { small: 0, large: 0, border: 0, overflow: 0 };
      // The closing loses the outermost pixels at the frame's edge: "touching" is within its reach.
      const edge = s.closePx + 1;
      let kept: Part[] = [];
      for (const p of parts) {
        if (p.m00 === 0) continue;
        if (p.m00 < s.minAreaPx) rejected.small += 1;
        else if (s.maxAreaPx > 0 && p.m00 > s.maxAreaPx) rejected.large += 1;
        else if (s.dropBorder && (p.x0 < edge || p.y0 < edge || p.x1 >= W - edge || p.y1 >= H - edge)) rejected.border += 1;
        else kept.push(p);
      }
      if (kept.length > s.maxRois) {
        rejected.overflow = kept.length - s.maxRois;
        const largest = new Set([...kept].sort((a, b) => b.m00 - a.m00).slice(0, s.maxRois));
        kept = kept.filter((c) => largest.has(c));
      }
      const flat = pass.flat.data;
      const rois: RoiGeometry[] = [];
      const crops: Uint8Array[] = [];
      for (const p of kept) {
        const cropX = Math.max(0, p.x0 - s.marginPx);
        const cropY = Math.max(0, p.y0 - s.marginPx);
        const cropWidth = Math.min(W, p.x1 + 1 + s.marginPx) - cropX;
        const cropHeight = Math.min(H, p.y1 + 1 + s.marginPx) - cropY;
        const crop = new Uint8Array(cropWidth * cropHeight);
        for (let r = 0; r < cropHeight; r++) {
          const from = (cropY + r) * W + cropX;
          crop.set(flat.subarray(from, from + cropWidth), r * cropWidth);
        }
        rois.push({
          index: rois.length + 1,
          x: p.x0,
          y: p.y0,
          width: p.x1 - p.x0 + 1,
          height: p.y1 - p.y0 + 1,
          cropX,
          cropY,
          cropWidth,
          cropHeight,
          areaPx: p.m00,
          ...shape(p),
        });
        crops.push(crop);
      }
      return { components: kept.length + rejected.small + rejected.large + rejected.border, rejected, rois, crops };
    } finally {
      grown.delete();
      labels.delete();
      stats.delete();
      centroids.delete();
    }
  }
}

/** Sums over one organism's mask pixels: box, raw moments (about the box corner) and grey. */
interface Part {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  m00: number;
  m10: number;
  m01: number;
  m20: number;
  m02: number;
  m11: number;
  grey: number;
}

/** One pass over the mask: each mask pixel added to the organism its label names. */
function accumulate(labels: Int32Array, labelWidth: number, mask: Uint8Array, flat: Uint8Array, width: number, n: number): Part[] {
  const parts: Part[] = [];
  for (let l = 0; l < n; l++) parts.push({ x0: width, y0: Infinity, x1: -1, y1: -1, m00: 0, m10: 0, m01: 0, m20: 0, m02: 0, m11: 0, grey: 0 });
  // Mostly empty water: skip it four pixels at a time.
  const words = mask.byteOffset % 4 === 0 ? new Uint32Array(mask.buffer, mask.byteOffset, mask.length >> 2) : undefined;
  for (let i = 0; i < mask.length; i++) {
    if (words && (i & 3) === 0 && words[i >> 2] === 0) {
      i += 3;
      continue;
    }
    if (mask[i] === 0) continue;
    const y = (i / width) | 0;
    const x = i - y * width;
    const l = labels[((y / GROUP_SCALE) | 0) * labelWidth + ((x / GROUP_SCALE) | 0)]!;
    if (l === 0) continue;
    const p = parts[l]!;
    if (x < p.x0) p.x0 = x;
    if (x > p.x1) p.x1 = x;
    if (y < p.y0) p.y0 = y;
    if (y > p.y1) p.y1 = y;
    p.m00 += 1;
    p.m10 += x;
    p.m01 += y;
    p.m20 += x * x;
    p.m02 += y * y;
    p.m11 += x * y;
    p.grey += flat[i]!;
  }
  return parts.slice(1);
}

function release(pass: Pass): void {
  pass.background.delete();
  pass.flat.delete();
  pass.mask.delete();
}

/**
 * Axes of the ellipse with the organism's second central moments (as scikit-image's regionprops:
 * 4·sqrt of the covariance's eigenvalues), its orientation, and its mean grey in the flat frame.
 */
function shape(p: Part): Pick<RoiGeometry, 'majorPx' | 'minorPx' | 'orientationDeg' | 'meanGrey'> {
  const cx = p.m10 / p.m00;
  const cy = p.m01 / p.m00;
  const a = p.m20 / p.m00 - cx * cx;
  const b = p.m11 / p.m00 - cx * cy;
  const d = p.m02 / p.m00 - cy * cy;
  const root = Math.sqrt(((a - d) / 2) ** 2 + b * b);
  const l1 = Math.max(0, (a + d) / 2 + root);
  const l2 = Math.max(0, (a + d) / 2 - root);
  // Image rows grow downwards: negated for the usual counter-clockwise angle.
  let orientationDeg = (-0.5 * Math.atan2(2 * b, a - d) * 180) / Math.PI;
  if (orientationDeg <= -90) orientationDeg += 180;
  return { majorPx: 4 * Math.sqrt(l1), minorPx: 4 * Math.sqrt(l2), orientationDeg, meanGrey: p.grey / p.m00 };
}

/** Mean and minimum of about 65,000 evenly spread values (a smooth background needs no more). */
function sampleStats(values: ArrayLike<number>): { mean: number; min: number } {
  const step = Math.max(1, Math.floor(values.length / 65536));
  let sum = 0;
  let n = 0;
  let min = Infinity;
  for (let i = 0; i < values.length; i += step, n++) {
    const v = values[i]!;
    sum += v;
    if (v < min) min = v;
  }
  return { mean: n ? sum / n : 0, min };
}

/** Bright-field when the median grey (of a sample of pixels) is above mid-grey. */
function guessPolarity(gray: Uint8Array): Polarity {
  const histogram = new Uint32Array(256);
  const step = Math.max(1, Math.floor(gray.length / 65536));
  let n = 0;
  for (let i = 0; i < gray.length; i += step, n++) histogram[gray[i]!]! += 1;
  let below = 0;
  for (let v = 0; v < 256; v++) {
    below += histogram[v]!;
    if (below >= n / 2) return v > 127 ? 'bright-field' : 'dark-field';
  }
  return 'bright-field';
}
