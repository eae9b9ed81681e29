// Training speed against inference speed for the same network on the same backend, and PyTorch
// CPU training of the same architecture on the same machine (bench/pytorch_train.py), when the
// python3 torch module is importable.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { foldModel } from '../classify/folded-model.js';
import { createAdam } from '../engine/adam.js';
import { architectureInfo, buildModel, countMacs, logitsModel } from '../learn/architectures.js';
import { initBackend } from '../engine/backend.js';
import { useFastTraining } from '../engine/fast-training.js';
import { useWinogradConvolutions } from '../simd/winograd-conv.js';

export interface TrainingBenchOptions {
  architectures?: string[];
  batchSize?: number;
  /** Seconds to measure each figure for (after warm-up). */
  seconds?: number;
}

function timeLoop(seconds: number, step: () => void): number {
  step();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 || n < 2) {
    step();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

/** Rounds in which the three figures are measured in turn (a share of the seconds each). */
const ROUNDS = 5;

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/**
 * Images per second of inference and of training steps (forward, backward, Adam update; batch
 * norm as the trainer runs it) for one architecture, on one thread with wasm. Random inputs.
 * Inference is the daemon's: batch norm folded and activations fused (`inference`); the layers
 * model's own predict is measured too (`layersInference`). Each figure is the median of ROUNDS
 * rounds; `ratio` is the median of the rounds' training / inference.
 */
export async function measureArchitecture(
  name: string,
  batchSize = 32,
  seconds = 8,
): Promise<{ macs: number; inference: number; layersInference: number; training: number; ratio: number; directTraining: number; winogradGain: number }> {
  const info = architectureInfo(name);
  const model = buildModel(name, { numClasses: 121, seed: 1 });
  const folded = foldModel(model);
  if (!folded) throw new Error(`${name}: the daemon's folded inference form does not apply`);
  const lm = logitsModel(model);
  const restoreBatchNorm = useFastTraining(model); // as the trainer does
  const s = info.inputSize;
  const x = tf.randomUniform([batchSize, s, s, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % 121), 'int32'), 121);
  const optimizer = createAdam(1e-3);
  const infer = () => tf.tidy(() => void folded.predict(x).dataSync());
  const predict = () => tf.tidy(() => void (model.predict(x) as tf.Tensor).dataSync());
  const trainStep = () =>
    tf.tidy(() => {
      const loss = optimizer.minimize(() => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(lm.apply(x, { training: true }) as tf.Tensor)), 1))) as tf.Scalar, true);
      loss!.dataSync();
    });
  // On a shared machine the speed drifts by tens of percent within a minute: the three figures
  // are measured in turn in each of ROUNDS rounds, and the ratio is the median of each round's
  // own ratio, so that a slow spell lowers both sides of it.
  // The training step is also measured with the direct loop in place of the Winograd convolution
  // (forward convolutions and input gradients), for what the latter gains, in the same rounds.
  const rounds = { inference: [] as number[], layers: [] as number[], training: [] as number[], ratio: [] as number[], direct: [] as number[], gain: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    const i = timeLoop(seconds / ROUNDS, infer);
    rounds.layers.push(timeLoop(seconds / ROUNDS, predict));
    const t = timeLoop(seconds / ROUNDS, trainStep);
    const previous = useWinogradConvolutions(false);
    const d = timeLoop(seconds / ROUNDS, trainStep);
    useWinogradConvolutions(previous);
    rounds.inference.push(i);
    rounds.training.push(t);
    rounds.ratio.push(t / i);
    rounds.direct.push(d);
    rounds.gain.push(t / d);
  }
  const macs = countMacs(model);
  restoreBatchNorm();
  tf.dispose([x, y]);
  optimizer.dispose();
  folded.dispose();
  model.dispose();
  return {
    macs,
    inference: median(rounds.inference) * batchSize,
    layersInference: median(rounds.layers) * batchSize,
    training: median(rounds.training) * batchSize,
    ratio: median(rounds.ratio),
    directTraining: median(rounds.direct) * batchSize,
    winogradGain: median(rounds.gain),
  };
}

/** PyTorch CPU training of the same architecture on `threads` threads: images/s, or why it was not run. */
export function pytorchTraining(name: string, batchSize = 32, seconds = 8, threads = 2): number | string {
  // src/bench or dist/bench: the script is two folders up, in bench/.
  const script = path.resolve(import.meta.dirname, '..', '..', 'bench', 'pytorch_train.py');
  if (!existsSync(script)) return 'script missing';
  // Debian's python3-torch lives in the system interpreter, which a pyenv or venv python3 hides.
  const python = [process.env.PLANKWATCH_PYTHON, 'python3', '/usr/bin/python3'].find(
    (p) => p && spawnSync(p, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0,
  );
  if (!python) return 'not installed';
  const info = architectureInfo(name);
  const run = spawnSync(
    python,
    [script, '--size', String(info.inputSize), '--blocks', JSON.stringify(info.blocks), '--dense', String(info.dense), '--batch-size', String(batchSize), '--seconds', String(seconds), '--threads', String(threads)],
    { encoding: 'utf8', timeout: 300_000 },
  );
  const m = /train_images_per_s=([\d.]+)/.exec(run.stdout ?? '');
  return m ? Number(m[1]) : `failed: ${(run.stderr ?? '').trim().split('\n').pop() ?? run.status}`;
}

export async function benchTraining(options: TrainingBenchOptions = {}): Promise<Record<string, number | string>> {
  const backend = await initBackend('auto');
  const out: Record<string, number | string> = { 'training.backend': backend.name, 'training.threads': backend.name === 'wasm' ? 1 : 'native' };
  for (const name of options.architectures ?? ['pw-vgg-48', 'pw-vgg-64', 'pw-vgg-80']) {
    const r = await measureArchitecture(name, options.batchSize ?? 32, options.seconds ?? 15);
    out[`training.${name}.multiplyAddsM`] = Math.round(r.macs / 1e5) / 10;
    out[`training.${name}.inferenceImagesPerS`] = Math.round(r.inference * 10) / 10;
    out[`training.${name}.layersPredictImagesPerS`] = Math.round(r.layersInference * 10) / 10;
    out[`training.${name}.trainImagesPerS`] = Math.round(r.training * 10) / 10;
    out[`training.${name}.trainToInferenceRatio`] = Math.round(r.ratio * 1000) / 1000;
    out[`training.${name}.trainImagesPerSDirectConv`] = Math.round(r.directTraining * 10) / 10;
    out[`training.${name}.winogradConvSpeedup`] = Math.round(r.winogradGain * 1000) / 1000;
    // PyTorch on 2 threads (the whole machine), and on one thread like the wasm figure above.
    for (const threads of [2, 1]) {
      const torch = pytorchTraining(name, options.batchSize ?? 32, options.seconds ?? 15, threads);
      out[`training.${name}.pytorchTrainImagesPerS${threads}Thread${threads > 1 ? 's' : ''}`] = typeof torch === 'number' ? Math.round(torch * 10) / 10 : torch;
    }
  }
  return out;
}
