// Mixing pairs of training images: mixup (Zhang et al. 2018: two images blended, their targets
// blended by the same share) and CutMix (Yun et al. 2019: a box of one image pasted into the
// other, the targets mixed by the box's area). Both regularise a network that learns its training
// images faster than it gains on new ones. One share λ ~ Beta(α, α) and one pairing per batch,
// as both papers' implementations draw them; every image is mixed with another of the same batch.
import { shuffleInPlace } from './random.js';

export type MixKind = 'none' | 'mixup' | 'cutmix';

export interface MixOptions {
  kind: MixKind;
  /** α of the Beta(α, α) the share of the image's own content is drawn from. */
  alpha: number;
  /** Probability that a batch is mixed at all (1: every batch). */
  probability: number;
}

export const NO_MIX: MixOptions = { kind: 'none', alpha: 0, probability: 0 };

/**
 * `--mix`: "none", "mixup" or "cutmix", optionally with its settings, e.g. "mixup,alpha=0.2" or
 * "cutmix,alpha=1,p=0.5". Defaults: α 0.2 for mixup, 1 for CutMix (each paper's), every batch.
 */
export function parseMix(spec: string | undefined): MixOptions {
  if (!spec || spec === 'none') return { ...NO_MIX };
  const [kind, ...settings] = spec.split(',');
  if (kind !== 'mixup' && kind !== 'cutmix') throw new Error(`--mix: unknown kind "${kind}" (choose none, mixup or cutmix, e.g. mixup,alpha=0.2 or cutmix,alpha=1,p=0.5).`);
  const out: MixOptions = { kind, alpha: kind === 'mixup' ? 0.2 : 1, probability: 1 };
  for (const part of settings) {
    const [k, v] = part.split('=');
    const n = Number(v);
    if ((k !== 'alpha' && k !== 'p') || v === undefined || v === '' || !Number.isFinite(n)) throw new Error(`--mix: unknown setting "${part}" (settings: alpha=<number>, p=<probability>).`);
    if (k === 'alpha') {
      if (n <= 0) throw new Error(`--mix: alpha must be above 0, not ${v}.`);
      out.alpha = n;
    } else {
      if (n < 0 || n > 1) throw new Error(`--mix: p is a probability from 0 to 1, not ${v}.`);
      out.probability = n;
    }
  }
  return out;
}

/** A standard normal draw (Box–Muller). */
function normal(rng: () => number): number {
  const u = Math.max(rng(), Number.MIN_VALUE);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** A Gamma(shape, 1) draw (Marsaglia and Tsang; shape < 1 through Gamma(shape + 1) · U^(1/shape)). */
export function gammaDraw(shape: number, rng: () => number): number {
  if (shape < 1) return gammaDraw(shape + 1, rng) * Math.pow(Math.max(rng(), Number.MIN_VALUE), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** A Beta(a, b) draw. */
export function betaDraw(a: number, b: number, rng: () => number): number {
  const x = gammaDraw(a, rng);
  const y = gammaDraw(b, rng);
  return x + y === 0 ? 0.5 : x / (x + y);
}

/** One batch, in place: `count` images of size² · channels floats, their target rows and loss weights. */
export interface MixBatch {
  x: Float32Array;
  targets: Float32Array;
  lossWeights: Float32Array;
  count: number;
  size: number;
  channels: number;
  numClasses: number;
}

/** What mixBatch did: the share of each image's own content (1 when the batch was left alone). */
export interface MixDraw {
  share: number;
  /** partner[i]: the image whose content was mixed into image i. */
  partner: Int32Array | null;
}

/**
 * Mix a batch in place: image i with image partner[i] (a random pairing of the batch), its
 * target row and loss weight with the partner's by the same share. With `kind` none, or when the
 * batch's draw against `probability` fails, nothing changes.
 */
export function mixBatch(batch: MixBatch, options: MixOptions, rng: () => number): MixDraw {
  const { count, size, channels, numClasses } = batch;
  if (options.kind === 'none' || count < 2 || !(rng() < options.probability)) return { share: 1, partner: null };
  let share = betaDraw(options.alpha, options.alpha, rng);
  const partner = Int32Array.from(shuffleInPlace(Array.from({ length: count }, (_, i) => i), rng));
  const one = size * size * channels;
  const x0 = batch.x.slice(0, count * one);
  if (options.kind === 'mixup') {
    for (let i = 0; i < count; i++) {
      const own = batch.x.subarray(i * one, (i + 1) * one);
      const other = x0.subarray(partner[i]! * one, (partner[i]! + 1) * one);
      for (let p = 0; p < one; p++) own[p] = share * own[p]! + (1 - share) * other[p]!;
    }
  } else {
    // A box of (1 − share) of the image's area, centred anywhere, clipped at the edges; the share
    // is then the part of the image left its own.
    const side = Math.sqrt(1 - share) * size;
    const cx = rng() * size;
    const cy = rng() * size;
    const x1 = Math.max(0, Math.round(cx - side / 2));
    const x2 = Math.min(size, Math.round(cx + side / 2));
    const y1 = Math.max(0, Math.round(cy - side / 2));
    const y2 = Math.min(size, Math.round(cy + side / 2));
    share = 1 - ((x2 - x1) * (y2 - y1)) / (size * size);
    for (let i = 0; i < count; i++) {
      const own = i * one;
      const other = partner[i]! * one;
      for (let y = y1; y < y2; y++) {
        const from = (y * size + x1) * channels;
        const to = (y * size + x2) * channels;
        batch.x.set(x0.subarray(other + from, other + to), own + from);
      }
    }
  }
  const t0 = batch.targets.slice(0, count * numClasses);
  const w0 = batch.lossWeights.slice(0, count);
  for (let i = 0; i < count; i++) {
    const row = batch.targets.subarray(i * numClasses, (i + 1) * numClasses);
    const other = t0.subarray(partner[i]! * numClasses, (partner[i]! + 1) * numClasses);
    for (let c = 0; c < numClasses; c++) row[c] = share * row[c]! + (1 - share) * other[c]!;
    batch.lossWeights[i] = share * w0[i]! + (1 - share) * w0[partner[i]!]!;
  }
  return { share, partner };
}
