// Classification metrics over probability rows: top-1, top-5, multiclass log-loss (the NDSB
// competition metric: rows normalised, probabilities clipped to [1e-15, 1 - 1e-15]), macro-F1,
// per-class precision and recall, and the confusion matrix.

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Number of images whose true class this is. */
  support: number;
}

export interface Metrics {
  count: number;
  top1: number;
  top5: number;
  logLoss: number;
  macroF1: number;
  perClass: ClassMetrics[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

const EPS = 1e-15;

/** Index of the largest value in row r of `probs` (k columns); ties go to the lower index. */
export function argmaxRow(probs: Float32Array, r: number, k: number): number {
  let best = 0;
  let bestV = -Infinity;
  for (let c = 0; c < k; c++) {
    const v = probs[r * k + c]!;
    if (v > bestV) {
      bestV = v;
      best = c;
    }
  }
  return best;
}

/** Row r's term of the log-loss: −log of its true class's clipped, renormalised probability. */
export function rowLogLoss(probs: Float32Array, r: number, k: number, label: number): number {
  let sum = 0;
  for (let c = 0; c < k; c++) sum += Math.min(1 - EPS, Math.max(EPS, probs[r * k + c]!));
  return -Math.log(Math.min(1 - EPS, Math.max(EPS, probs[r * k + label]!)) / sum);
}

/** Multiclass log-loss as scored by Kaggle: each row rescaled to sum 1 after clipping. */
export function logLoss(probs: Float32Array, labels: Int32Array, k: number): number {
  let total = 0;
  for (let r = 0; r < labels.length; r++) total += rowLogLoss(probs, r, k, labels[r]!);
  return total / labels.length;
}

/** Whether the true class is among the `n` highest probabilities (ties counted against it). */
function inTopN(probs: Float32Array, r: number, k: number, label: number, n: number): boolean {
  const p = probs[r * k + label]!;
  let higher = 0;
  for (let c = 0; c < k; c++) {
    if (c === label) continue;
    const v = probs[r * k + c]!;
    if (v > p || (v === p && c < label)) higher++;
    if (higher >= n) return false;
  }
  return true;
}

export function computeMetrics(probs: Float32Array, labels: Int32Array, k: number): Metrics {
  const count = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let top1 = 0;
  let top5 = 0;
  for (let r = 0; r < count; r++) {
    const label = labels[r]!;
    const pred = argmaxRow(probs, r, k);
    confusion[label]![pred]!++;
    if (pred === label) top1++;
    if (inTopN(probs, r, k, label, 5)) top5++;
  }
  const perClass: ClassMetrics[] = [];
  let f1Sum = 0;
  let f1Count = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c]![c]!;
    let predicted = 0;
    let support = 0;
    for (let o = 0; o < k; o++) {
      predicted += confusion[o]![c]!;
      support += confusion[c]![o]!;
    }
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    perClass.push({ precision, recall, f1, support });
    if (support > 0) {
      f1Sum += f1;
      f1Count++;
    }
  }
  return {
    count,
    top1: count ? top1 / count : 0,
    top5: count ? top5 / count : 0,
    logLoss: count ? logLoss(probs, labels, k) : 0,
    macroF1: f1Count ? f1Sum / f1Count : 0,
    perClass,
    confusion,
  };
}

/** The four figures meta.json records for a validation (per epoch, per average, as the model's metrics). */
export function headline(v: Metrics): { top1: number; top5: number; logLoss: number; macroF1: number } {
  return { top1: v.top1, top5: v.top5, logLoss: v.logLoss, macroF1: v.macroF1 };
}
