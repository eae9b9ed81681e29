// Per-channel statistics of a layer's output on a sample of training images: what a batch norm's
// moving statistics are set from (the identity start, the weight average).
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageTable } from './image-cache.js';
import { predictTable } from './trainer.js';

/** Up to `images` rows of `table`, evenly spaced over it. */
export function evenSample(table: ImageTable, images: number): ImageTable {
  const n = table.rels.length;
  if (n <= images) return table;
  const s2 = table.size * table.size;
  const step = Math.max(1, Math.floor(n / images));
  const rows: number[] = [];
  for (let i = 0; i < n && rows.length < images; i += step) rows.push(i);
  const pixels = new Uint8Array(rows.length * s2);
  rows.forEach((r, i) => pixels.set(table.pixels.subarray(r * s2, (r + 1) * s2), i * s2));
  return { size: table.size, pixels, rels: rows.map((r) => table.rels[r]!) };
}

/** Mean and (population) variance of each channel of `output` (a channels-last 4D tensor of `model`) on `sample`. */
export function channelMoments(model: tfl.LayersModel, output: tfl.SymbolicTensor, sample: ImageTable): { mean: Float32Array; variance: Float32Array } {
  const probe = tfl.model({ inputs: model.inputs, outputs: output });
  const out = predictTable(probe, sample);
  const channels = output.shape[output.shape.length - 1]!;
  const sum = new Float64Array(channels);
  const sq = new Float64Array(channels);
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    sum[i % channels] += v;
    sq[i % channels] += v * v;
  }
  const count = out.length / channels;
  const mean = Float32Array.from(sum, (v) => v / count);
  const variance = Float32Array.from(sq, (v, c) => Math.max(0, v / count - mean[c]! ** 2));
  return { mean, variance };
}
