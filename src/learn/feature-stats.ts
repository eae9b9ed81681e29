// Per-channel statistics of a layer's output on a sample of training images: what a batch norm's
// moving statistics are set from (the identity start, the weight average).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { imageBytes, tableRows, type ImageTable } from './image-cache.js';

/** Up to `images` rows of `table`, evenly spaced over it. */
export function evenSample(table: ImageTable, images: number): ImageTable {
  const n = table.rels.length;
  if (n <= images) return table;
  const s2 = imageBytes(table);
  const step = Math.max(1, Math.floor(n / images));
  const rows: number[] = [];
  for (let i = 0; i < n && rows.length < images; i += step) rows.push(i);
  const pixels = new Uint8Array(rows.length * s2);
  rows.forEach((r, i) => pixels.set(table.pixels.subarray(r * s2, (r + 1) * s2), i * s2));
  return { size: table.size, ...(table.channels === 3 ? { channels: 3 as const } : {}), pixels, rels: rows.map((r) => table.rels[r]!) };
}

/**
 * Mean and (population) variance of each channel of `output` (a channels-last tensor of `model`)
 * on `sample`. The sums are taken on the backend batch by batch, so only one batch's features
 * are ever held (all of them at once would be gigabytes for an early layer of an 80 px network).
 */
export function channelMoments(model: tfl.LayersModel, output: tfl.SymbolicTensor, sample: ImageTable, batchSize = 64): { mean: Float32Array; variance: Float32Array } {
  const probe = tfl.model({ inputs: model.inputs, outputs: output });
  const channels = output.shape[output.shape.length - 1]!;
  // Per batch: each channel's mean and variance (centred on the batch's own mean, so float32 loses
  // little); batches are then pooled in float64 (total variance = mean of the batch variances plus
  // the variance of the batch means, each weighted by its positions).
  const sum = new Float64Array(channels);
  const sq = new Float64Array(channels);
  const s = sample.size;
  const n = sample.rels.length;
  let count = 0;
  for (let start = 0; start < n; start += batchSize) {
    const rows = Math.min(batchSize, n - start);
    const [bm, bv, positions] = tf.tidy(() => {
      const y = probe.predict(tf.tensor4d(tableRows(sample, start, rows), [rows, s, s, sample.channels ?? 1])) as tf.Tensor;
      const flat = tf.reshape(y, [-1, channels]);
      const { mean, variance } = tf.moments(flat, 0);
      return [mean.dataSync(), variance.dataSync(), flat.shape[0]] as const;
    });
    for (let c = 0; c < channels; c++) {
      sum[c] += bm[c]! * positions;
      sq[c] += (bv[c]! + bm[c]! * bm[c]!) * positions;
    }
    count += positions;
  }
  const mean = Float32Array.from(sum, (v) => v / count);
  const variance = Float32Array.from(sq, (v, c) => Math.max(0, v / count - (sum[c]! / count) ** 2));
  return { mean, variance };
}
