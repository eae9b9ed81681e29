// A size expert for scripts/vote-levers.mjs: a small network (one hidden layer of 64 ReLU units,
// Adam with cosine decay, 40 epochs of batches of 128, weight decay 1e-4, seed 7) that reads only
// size features of the ROI and gives p(class | size).

/** Train on rows `trainX` (features) and labels `trainY` of `k` classes; returns x => probabilities. */
export function trainSizeExpert(trainX, trainY, k) {
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
  return (x) => {
    const probabilities = new Float64Array(k);
    forward(standard(x), new Float64Array(H), probabilities);
    return probabilities;
  };
}
