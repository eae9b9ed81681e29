// The classifier head trained alone on feature rows (finetune.layers "head"): a dense layer and a
// softmax, class-weighted cross-entropy, Adam and a cosine schedule, in plain TypeScript and double
// precision. head-features.ts gives it the rows its member's frozen body computed.
import { classWeights, cosineRate, epochDraws, progressEvent, type ClassWeighting, type ProgressEvent } from '../learn/trainer.js';
import { addRowTimesWeights, type HeadWeights } from './head.js';

export interface HeadTrainConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  classWeights: ClassWeighting;
  maxMinutes: number;
}

/** Final learning rate as a fraction of the first (cosine schedule), as fine-tuning always used. */
const FINAL_RATE_FRACTION = 0.05;
const BETA1 = 0.9;
const BETA2 = 0.999;
/** TensorFlow.js's epsilon for float32 backends, which its Adam adds. */
const EPSILON = 1e-7;

/**
 * Train `head` in place on feature rows: class-weighted cross-entropy, Adam, the learning rate on
 * a cosine from learningRate to 5% of it, whole batches only (as the trainer does), each image
 * read in one of its views per epoch. Returns the epochs run and the last epoch's mean loss.
 */
export function trainHead(
  head: HeadWeights,
  data: { features: Float32Array[]; rows: Int32Array; labels: Int32Array },
  config: HeadTrainConfig,
  onProgress: (p: ProgressEvent) => void = () => {},
): { epochs: number; finalLoss: number | null } {
  const { inputs: F, units: K } = head;
  const n = data.rows.length;
  const views = data.features.length;
  const B = config.batchSize;
  const batches = Math.floor(n / B);
  const weights = classWeights(data.labels, K, config.classWeights);
  const schedule = { learningRate: config.learningRate, finalLearningRateFraction: FINAL_RATE_FRACTION };
  const nw = F * K;
  // Parameters (weights then bias) and Adam's moments, in double precision.
  const p = new Float64Array(nw + K);
  p.set(head.weights);
  p.set(head.bias, nw);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  const g = new Float64Array(p.length);
  const z = new Float64Array(K);
  let step = 0;
  const started = performance.now();
  let epochsRun = 0;
  let finalLoss: number | null = null;
  for (let epoch = 0; epoch < config.epochs; epoch++) {
    const { order, rng } = epochDraws(config.seed, n, epoch);
    const epochStart = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let stop = false;
    for (let b = 0; b < batches; b++) {
      const lr = cosineRate(schedule, (epoch + b / batches) / config.epochs);
      g.fill(0);
      for (let i = 0; i < B; i++) {
        const idx = order[b * B + i]!;
        const f = data.features[views > 1 ? Math.floor(rng() * views) : 0]!;
        const at = data.rows[idx]! * F;
        const y = data.labels[idx]!;
        for (let j = 0; j < K; j++) z[j] = p[nw + j]!;
        addRowTimesWeights(z, f, at, F, p, K);
        let max = -Infinity;
        let best = 0;
        for (let j = 0; j < K; j++) {
          if (z[j]! > max) {
            max = z[j]!;
            best = j;
          }
        }
        let sum = 0;
        for (let j = 0; j < K; j++) sum += z[j] = Math.exp(z[j]! - max);
        const cw = weights[y]!;
        lossSum += -Math.log(Math.max(z[y]! / sum, 1e-30)) * cw;
        if (best === y) correct++;
        // d(loss)/d(logit j) = (p_j - [j = y]) · weight / B
        for (let j = 0; j < K; j++) z[j] = ((z[j]! / sum - (j === y ? 1 : 0)) * cw) / B;
        for (let k = 0; k < F; k++) {
          const x = f[at + k]!;
          if (x === 0) continue;
          const w = k * K;
          for (let j = 0; j < K; j++) g[w + j] = g[w + j]! + x * z[j]!;
        }
        for (let j = 0; j < K; j++) g[nw + j] = g[nw + j]! + z[j]!;
      }
      step++;
      const c1 = 1 / (1 - BETA1 ** step);
      const c2 = 1 / (1 - BETA2 ** step);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = (m[i] = BETA1 * m[i]! + (1 - BETA1) * gi);
        const vi = (v[i] = BETA2 * v[i]! + (1 - BETA2) * gi * gi);
        p[i] = p[i]! - (lr * mi * c1) / (Math.sqrt(vi * c2) + EPSILON);
      }
      seen += B;
      onProgress(progressEvent({ epochs: config.epochs }, { epoch, batches, lossSum, correct, seen, startedMs: epochStart }, b, B));
      if (config.maxMinutes > 0 && (performance.now() - started) / 60000 > config.maxMinutes) {
        stop = true;
        break;
      }
    }
    epochsRun++;
    finalLoss = seen > 0 ? lossSum / seen : null;
    if (stop) break;
  }
  for (let i = 0; i < nw; i++) head.weights[i] = p[i]!;
  for (let j = 0; j < K; j++) head.bias[j] = p[nw + j]!;
  return { epochs: epochsRun, finalLoss };
}
