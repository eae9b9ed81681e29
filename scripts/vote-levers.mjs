#!/usr/bin/env node
// Measures two levers on the vote that need no model run, from the probabilities that
// `plankwatch evaluate --save-probabilities` wrote, each by a fair estimate: fitted on one half of
// the held-out images, scored on the other (4 seeded halvings, both ways):
//   - the temperature alone (what the shipped ensemble file carries);
//   - the temperature and a size prior: log p(size | class), a Gaussian per class over the
//     original ROI's long and short side and its organism area (logs), fitted on the split's
//     training images only, added to the vote with a fitted weight;
//   - the temperature and a learned size expert (scripts/size-expert.mjs) over the same sizes and
//     the organism's share of the ROI, trained on the same images, added to the vote as
//     beta * (log p(class | size) - log p(class)) with a fitted beta;
//   - the temperature and a weight per member.
//
//   plankwatch evaluate --data DIR --tta identity --save-probabilities --out /tmp/eval
//   node scripts/vote-levers.mjs /tmp/eval DIR models/splits/<split>
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { trainSizeExpert } from './size-expert.mjs';

const [evalDir, dataDir, splitDir] = process.argv.slice(2);
if (!evalDir || !dataDir || !splitDir) {
  console.error('usage: node scripts/vote-levers.mjs EVAL_DIR DATA_DIR SPLIT_DIR');
  process.exit(2);
}
const saved = JSON.parse(readFileSync(path.join(evalDir, 'probabilities.json'), 'utf8'));
const { images, labels, classes } = saved;
const n = images.length;
const k = classes.length;
const members = saved.members.map((m) => {
  const bytes = readFileSync(path.join(evalDir, m.file));
  const p = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return Float64Array.from(p, (v) => Math.log(Math.max(v, 1e-12)));
});

/**
 * Long side, short side and organism area (pixels darker than 230), as logs (the size prior reads
 * these three); then the area's share of the ROI and its log (the size expert reads all five).
 */
async function sizeFeatures(rel) {
  const { data, info } = await sharp(path.join(dataDir, rel)).grayscale().raw().toBuffer({ resolveWithObject: true });
  let dark = 0;
  for (const v of data) if (v < 230) dark++;
  const long = Math.max(info.width, info.height);
  const short = Math.min(info.width, info.height);
  const share = dark / (long * short);
  return [Math.log(long), Math.log(short), Math.log(dark + 1), share, Math.log(share + 1e-4)];
}
const root = readFileSync(path.join(splitDir, 'train.txt'), 'utf8').trim().split('\n');
const classIndex = new Map(classes.map((c, i) => [c, i]));
const trainX = [];
const trainY = [];
for (const rel of root) {
  trainX.push(await sizeFeatures(rel));
  trainY.push(classIndex.get(rel.split('/')[0]));
}
const heldX = [];
for (const rel of images) heldX.push(await sizeFeatures(rel));

// Per-class Gaussians (3-d), each covariance shrunk towards the pooled within-class one.
const d = 3;
const means = Array.from({ length: k }, () => new Float64Array(d));
const counts = new Float64Array(k);
trainX.forEach((x, i) => {
  counts[trainY[i]]++;
  for (let a = 0; a < d; a++) means[trainY[i]][a] += x[a];
});
means.forEach((m, c) => m.forEach((_, a) => (m[a] /= Math.max(1, counts[c]))));
const covs = Array.from({ length: k }, () => new Float64Array(d * d));
const pooled = new Float64Array(d * d);
trainX.forEach((x, i) => {
  const m = means[trainY[i]];
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) covs[trainY[i]][a * d + b] += (x[a] - m[a]) * (x[b] - m[b]);
});
covs.forEach((cv) => cv.forEach((v, j) => (pooled[j] += v / (trainX.length - k))));
const SHRINK = 20;
function inverse3(m) {
  const [a, b, c, d1, e, f, g, h, i] = m;
  const A = e * i - f * h, B = -(d1 * i - f * g), C = d1 * h - e * g;
  const det = a * A + b * B + c * C;
  return { det, inv: [A / det, -(b * i - c * h) / det, (b * f - c * e) / det, B / det, (a * i - c * g) / det, -(a * f - c * d1) / det, C / det, -(a * h - b * g) / det, (a * e - b * d1) / det] };
}
const gauss = covs.map((cv, c) => {
  const m = counts[c];
  const mixed = cv.map((v, j) => (v + SHRINK * pooled[j]) / (Math.max(m - 1, 0) + SHRINK) + (j % (d + 1) === 0 ? 1e-4 : 0));
  return inverse3(mixed);
});
const sizeLog = new Float64Array(n * k);
heldX.forEach((x, i) => {
  for (let c = 0; c < k; c++) {
    const { det, inv } = gauss[c];
    const v = x.slice(0, d).map((xa, a) => xa - means[c][a]);
    let q = 0;
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) q += v[a] * inv[a * d + b] * v[b];
    sizeLog[i * k + c] = -0.5 * q - 0.5 * Math.log(det);
  }
});

// The size expert: log(p(class | size) / p(class)), the prior from the same training images.
const predict = trainSizeExpert(trainX, trainY, k);
const prior = new Float64Array(k);
for (const y of trainY) prior[y] += 1 / trainY.length;
const expertLog = new Float64Array(n * k);
let expertHits = 0;
heldX.forEach((x, i) => {
  const p = predict(x);
  let best = 0;
  for (let c = 0; c < k; c++) {
    expertLog[i * k + c] = Math.log(p[c] + 1e-10) - Math.log(prior[c] + 1e-10);
    if (p[c] > p[best]) best = c;
  }
  if (best === labels[i]) expertHits++;
});
console.log(`size expert alone: top-1 ${((100 * expertHits) / n).toFixed(2)}%`);

/** Top-1 and log-loss on rows idx of sum_m w_m log p_m + alpha * size (the prior's, or the expert's). */
function score(weights, alpha, idx, size = sizeLog) {
  let loss = 0;
  let hits = 0;
  const z = new Float64Array(k);
  for (const i of idx) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let v = alpha * size[i * k + c];
      for (let m = 0; m < members.length; m++) v += weights[m] * members[m][i * k + c];
      z[c] = v;
      if (v > max) max = v;
    }
    let sum = 0;
    let best = 0;
    for (let c = 0; c < k; c++) {
      sum += Math.exp(z[c] - max);
      if (z[c] > z[best]) best = c;
    }
    loss -= z[labels[i]] - max - Math.log(sum);
    if (best === labels[i]) hits++;
  }
  return { top1: hits / idx.length, logLoss: loss / idx.length };
}

function shuffled(seed) {
  let s = seed * 2654435761 + 1;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const M = members.length;
/** The temperature and the weight of one size term (`size`: the prior's or the expert's), fitted together on rows idx. */
function temperatureAndSize(idx, size, maxAlpha, alphaStep) {
  let best = null;
  for (let t = 0.8; t <= 1.4; t += 0.02)
    for (let alpha = 0; alpha <= maxAlpha; alpha += alphaStep) {
      const w = new Array(M).fill(1 / M / t);
      const s = score(w, alpha, idx, size).logLoss;
      if (!best || s < best.s) best = { s, w, alpha, size };
    }
  return best;
}
const fits = {
  temperature: (idx) => {
    let best = null;
    for (let t = 0.7; t <= 1.6; t += 0.01) {
      const w = new Array(M).fill(1 / M / t);
      const s = score(w, 0, idx).logLoss;
      if (!best || s < best.s) best = { s, w, alpha: 0 };
    }
    return best;
  },
  'temperature + size prior': (idx) => temperatureAndSize(idx, sizeLog, 0.5, 0.0125),
  'temperature + size expert': (idx) => temperatureAndSize(idx, expertLog, 1.0001, 0.05),
  'weight per member': (idx) => {
    let w = fits.temperature(idx).w.slice();
    let s = score(w, 0, idx).logLoss;
    for (let round = 0; round < 4; round++)
      for (let m = 0; m < M; m++)
        for (const f of [0.8, 0.9, 0.95, 1.05, 1.1, 1.25]) {
          const t = w.slice();
          t[m] *= f;
          const st = score(t, 0, idx).logLoss;
          if (st < s) [w, s] = [t, st];
        }
    return { s, w, alpha: 0 };
  },
};

for (const [name, fit] of Object.entries(fits)) {
  let top1 = 0;
  let logLoss = 0;
  let runs = 0;
  for (let seed = 1; seed <= 4; seed++) {
    const order = shuffled(seed);
    const halves = [order.slice(0, n >> 1), order.slice(n >> 1)];
    for (const [a, b] of [[0, 1], [1, 0]]) {
      const chosen = fit(halves[a]);
      const r = score(chosen.w, chosen.alpha, halves[b], chosen.size);
      top1 += r.top1;
      logLoss += r.logLoss;
      runs++;
    }
  }
  console.log(`${name.padEnd(26)} fair top-1 ${((100 * top1) / runs).toFixed(2)}%  log-loss ${(logLoss / runs).toFixed(4)}`);
}
