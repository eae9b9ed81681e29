#!/usr/bin/env node
// Measures a learned size expert beside the vote, from the probabilities that
// `plankwatch evaluate --save-probabilities` wrote, by a fair estimate: fitted on one half of the
// held-out images, scored on the other (4 seeded halvings, both ways).
//
// The expert is a small network (one hidden layer of 64 ReLU units, Adam, seed 7) that reads only
// the original ROI's long side, short side, organism area (logs), the area's share of the ROI and
// its log, trained on the split's training images. It joins the vote as
// beta * (log p(class | size) - log p(class)), beta and the temperature fitted together.
//
//   plankwatch evaluate --data DIR --tta identity --save-probabilities --out /tmp/eval
//   node scripts/size-expert.mjs /tmp/eval DIR models/splits/<split>
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

const [evalDir, dataDir, splitDir] = process.argv.slice(2);
if (!evalDir || !dataDir || !splitDir) {
  console.error('usage: node scripts/size-expert.mjs EVAL_DIR DATA_DIR SPLIT_DIR');
  process.exit(2);
}
const saved = JSON.parse(readFileSync(path.join(evalDir, 'probabilities.json'), 'utf8'));
const { images, labels, classes } = saved;
const n = images.length;
const k = classes.length;
const classIndex = new Map(classes.map((c, i) => [c, i]));

/** The vote of the saved members (their weights), as log-probabilities before normalising. */
const weights = saved.members.map((m) => m.weight ?? 1);
const weightSum = weights.reduce((a, b) => a + b, 0);
const vote = new Float64Array(n * k);
saved.members.forEach((m, j) => {
  const bytes = readFileSync(path.join(evalDir, m.file));
  const p = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  for (let i = 0; i < n * k; i++) vote[i] += (weights[j] / weightSum) * Math.log(Math.max(p[i], 1e-10));
});

async function sizeFeatures(rel) {
  const { data, info } = await sharp(path.join(dataDir, rel)).grayscale().raw().toBuffer({ resolveWithObject: true });
  let dark = 0;
  for (const v of data) if (v < 230) dark++;
  const long = Math.max(info.width, info.height);
  const short = Math.min(info.width, info.height);
  const share = dark / (long * short);
  return [Math.log(long), Math.log(short), Math.log(dark + 1), share, Math.log(share + 1e-4)];
}
const trainRels = readFileSync(path.join(splitDir, 'train.txt'), 'utf8').trim().split('\n');
const trainX = [];
const trainY = [];
for (const rel of trainRels) {
  trainX.push(await sizeFeatures(rel));
  trainY.push(classIndex.get(rel.split('/')[0]));
}
const heldX = [];
for (const rel of images) heldX.push(await sizeFeatures(rel));

// Standardise on the training images.
const d = trainX[0].length;
const mean = new Float64Array(d);
const sd = new Float64Array(d);
for (const x of trainX) x.forEach((v, a) => (mean[a] += v / trainX.length));
for (const x of trainX) x.forEach((v, a) => (sd[a] += (v - mean[a]) ** 2 / trainX.length));
sd.forEach((v, a) => (sd[a] = Math.sqrt(v) || 1));
const standard = (x) => x.map((v, a) => (v - mean[a]) / sd[a]);

let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
const H = 64;
const w1 = Float64Array.from({ length: d * H }, () => gauss() * Math.sqrt(2 / d));
const b1 = new Float64Array(H);
const w2 = Float64Array.from({ length: H * k }, () => gauss() * Math.sqrt(1 / H));
const b2 = new Float64Array(k);
const params = [w1, b1, w2, b2];

/** The expert's probabilities for one standardised row, into `out`; hidden activations into `h`. */
function forward(x, h, out) {
  for (let u = 0; u < H; u++) {
    let s = b1[u];
    for (let a = 0; a < d; a++) s += x[a] * w1[a * H + u];
    h[u] = s > 0 ? s : 0;
  }
  let top = -Infinity;
  for (let c = 0; c < k; c++) {
    let s = b2[c];
    for (let u = 0; u < H; u++) s += h[u] * w2[u * k + c];
    out[c] = s;
    if (s > top) top = s;
  }
  let sum = 0;
  for (let c = 0; c < k; c++) sum += (out[c] = Math.exp(out[c] - top));
  for (let c = 0; c < k; c++) out[c] /= sum;
}

// Adam with cosine decay, 40 epochs of batches of 128, weight decay 1e-4.
const rows = trainX.map(standard);
const order = rows.map((_, i) => i);
const grads = params.map((p) => new Float64Array(p.length));
const m1 = params.map((p) => new Float64Array(p.length));
const m2 = params.map((p) => new Float64Array(p.length));
const h = new Float64Array(H);
const out = new Float64Array(k);
const dh = new Float64Array(H);
const EPOCHS = 40;
let step = 0;
for (let e = 0; e < EPOCHS; e++) {
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const lr = 0.005 * 0.5 * (1 + Math.cos((Math.PI * e) / EPOCHS));
  for (let s = 0; s < order.length; s += 128) {
    grads.forEach((g) => g.fill(0));
    const count = Math.min(128, order.length - s);
    for (let q = s; q < s + count; q++) {
      const x = rows[order[q]];
      forward(x, h, out);
      out[trainY[order[q]]] -= 1;
      for (let u = 0; u < H; u++) {
        let back = 0;
        for (let c = 0; c < k; c++) {
          grads[2][u * k + c] += h[u] * out[c];
          back += w2[u * k + c] * out[c];
        }
        dh[u] = h[u] > 0 ? back : 0;
      }
      for (let c = 0; c < k; c++) grads[3][c] += out[c];
      for (let u = 0; u < H; u++) {
        grads[1][u] += dh[u];
        for (let a = 0; a < d; a++) grads[0][a * H + u] += x[a] * dh[u];
      }
    }
    step++;
    params.forEach((p, j) => {
      for (let t = 0; t < p.length; t++) {
        const g = grads[j][t] / count + 1e-4 * p[t];
        m1[j][t] = 0.9 * m1[j][t] + 0.1 * g;
        m2[j][t] = 0.999 * m2[j][t] + 0.001 * g * g;
        p[t] -= (lr * (m1[j][t] / (1 - 0.9 ** step))) / (Math.sqrt(m2[j][t] / (1 - 0.999 ** step)) + 1e-8);
      }
    });
  }
}

// The expert on the held-out images, as log(p(class | size) / p(class)).
const prior = new Float64Array(k);
for (const y of trainY) prior[y] += 1 / trainY.length;
const expert = new Float64Array(n * k);
let alone = 0;
let aloneLoss = 0;
heldX.forEach((x, i) => {
  forward(standard(x), h, out);
  let best = 0;
  for (let c = 0; c < k; c++) {
    expert[i * k + c] = Math.log(out[c] + 1e-10) - Math.log(prior[c] + 1e-10);
    if (out[c] > out[best]) best = c;
  }
  if (best === labels[i]) alone++;
  aloneLoss -= Math.log(out[labels[i]] + 1e-10);
});
console.log(`size expert alone: top-1 ${((100 * alone) / n).toFixed(2)}%, log-loss ${(aloneLoss / n).toFixed(4)}`);

function score(subset, beta, temperature) {
  let loss = 0;
  let right = 0;
  const z = new Float64Array(k);
  for (const i of subset) {
    let top = -Infinity;
    let best = 0;
    for (let c = 0; c < k; c++) {
      z[c] = (vote[i * k + c] + beta * expert[i * k + c]) / temperature;
      if (z[c] > top) [top, best] = [z[c], c];
    }
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(z[c] - top);
    loss -= z[labels[i]] - top - Math.log(sum);
    if (best === labels[i]) right++;
  }
  return { logLoss: loss / subset.length, top1: right / subset.length };
}
function fit(subset, withExpert) {
  let best = null;
  for (let beta = 0; beta <= (withExpert ? 1.0001 : 0); beta += 0.05) {
    for (let t = 0.8; t <= 1.6; t += 0.025) {
      const r = score(subset, beta, t);
      if (!best || r.logLoss < best.logLoss) best = { ...r, beta, temperature: t };
    }
  }
  return best;
}

const all = [...Array(n).keys()];
const inSample = fit(all, true);
console.log(`in-sample with the expert: beta ${inSample.beta.toFixed(2)}, temperature ${inSample.temperature.toFixed(3)}`);
seed = 99;
const sums = { without: { top1: 0, logLoss: 0 }, with: { top1: 0, logLoss: 0 } };
let halves = 0;
for (let r = 0; r < 4; r++) {
  const shuffled = [...all];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const a = shuffled.slice(0, n >> 1);
  const b = shuffled.slice(n >> 1);
  for (const [on, other] of [[a, b], [b, a]]) {
    const plain = fit(on, false);
    const both = fit(on, true);
    const s0 = score(other, 0, plain.temperature);
    const s1 = score(other, both.beta, both.temperature);
    sums.without.top1 += s0.top1;
    sums.without.logLoss += s0.logLoss;
    sums.with.top1 += s1.top1;
    sums.with.logLoss += s1.logLoss;
    halves++;
  }
}
const line = (s) => `${((100 * s.top1) / halves).toFixed(2)}% / ${(s.logLoss / halves).toFixed(4)}`;
console.log(`fair estimate, the temperature alone: ${line(sums.without)}`);
console.log(`fair estimate, the temperature and the size expert: ${line(sums.with)}`);
