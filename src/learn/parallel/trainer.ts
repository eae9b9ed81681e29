// Data-parallel training over worker threads. The loop is the single-thread trainer's (same
// batches, augmentation, class weights, cosine schedule, validation, checkpoints, --resume, early
// stopping, best epoch kept); only the step differs:
//
//   main thread                                  worker k (own wasm backend, model replica)
//   ─────────────────────────────────────────    ──────────────────────────────────────────
//   global batch (same images and augmentation
//   as the single-thread trainer), cut into N
//   shards; shared weights, shard k ───────────▶ set weights; forward (training batch norm) and
//   augment the next batch meanwhile             backward on the shard: Σ(w·CE)/B and gradients
//   Σ shard gradients (= the global batch's) ◀── gradients, loss, hits, batch-norm moving stats
//   + weight decay; one Adam step; moving
//   statistics = shard-size-weighted mean
//
// The main thread owns the only optimizer and the authoritative weights, which it sends with
// every step, so the replicas cannot drift apart. Each shard's loss is divided by the global
// batch size, so the sum of the shard gradients is the gradient of the global batch's loss; the
// one difference from one thread is that batch norm normalises each shard with its own
// statistics (as data-parallel training on GPUs does). With one worker the computation is the
// single-thread trainer's.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { epochBatches, newBatch } from '../batch.js';
import { deriveSeed } from '../random.js';
import { scheduledRate, epochReport, progressEvent, setLearningRate, setUpRun, type RunClock, type TrainConfig, type TrainData, type TrainHooks, type TrainResult } from '../trainer.js';
import { endEpoch, finishRun, stopWithinEpoch, type EpochEnd } from '../checkpoint.js';
import { GradientPool, shardSizes, type Shard } from './pool.js';
import type { WorkerModel } from './protocol.js';
import { readFlat, subsetSize, weightLayout, writeFlat, type WeightLayout } from './replica.js';

export interface ParallelTrainConfig extends TrainConfig {
  /** Worker threads, each computing the gradients of 1/workers of every batch. */
  workers: number;
}

export interface ParallelTrainResult extends TrainResult {
  workers: number;
}

export interface ParallelTrainHooks extends TrainHooks {
  /** Called after each step with the pool and the main thread's weight layout (tests). */
  onStep?: (pool: GradientPool, layout: WeightLayout) => Promise<void> | void;
}

/** The model's topology and weights, in memory, for the workers to build their replicas from. */
export async function modelArtifacts(model: tfl.LayersModel): Promise<WorkerModel> {
  let out: WorkerModel | null = null;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const parts = a.weightData === undefined ? [] : Array.isArray(a.weightData) ? a.weightData : [a.weightData];
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      let o = 0;
      for (const p of parts) {
        bytes.set(new Uint8Array(p), o);
        o += p.byteLength;
      }
      out = { modelTopology: a.modelTopology as object, weightSpecs: (a.weightSpecs ?? []) as WorkerModel['weightSpecs'], weightData: bytes.buffer };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!out) throw new Error('the model could not be serialised for the workers');
  return out;
}

/** Which backend the workers start: the main thread's, when it is one a worker can run. */
function workerBackend(): 'wasm' | 'cpu' {
  const name = tf.getBackend();
  if (name === 'wasm' || name === 'cpu') return name;
  throw new Error(`--workers needs the wasm or cpu backend (active: ${name}); native TensorFlow already uses every core from one thread.`);
}

/**
 * Train `model` in place with `config.workers` gradient workers. On return the model holds the
 * best epoch's weights, as with train().
 */
export async function trainParallel(model: tfl.LayersModel, data: TrainData, config: ParallelTrainConfig, hooks: ParallelTrainHooks = {}): Promise<ParallelTrainResult> {
  const workers = config.workers;
  const { table } = data.train;
  /** Distillation: whether the targets hold a teacher's vote (not at share 0). */
  const teacher = (config.distill ?? 0) > 0 && data.train.targets !== undefined;
  const s = table.size;
  const channels = table.channels ?? 1;
  /** Floats (or bytes) of one image: size² per channel. */
  const s2 = s * s * channels;
  const B = config.batchSize;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a whole number of at least 1, not ${workers}.`);
  if (B < workers) throw new Error(`--batch-size ${B} is smaller than --workers ${workers}: every worker needs at least one image per step.`);
  const backend = workerBackend();
  const setup = await setUpRun(model, data, config, hooks);
  const { weights, optimizer, batches, state, average } = setup;
  let bestWeights = setup.bestWeights;
  state.workers = [...(state.workers ?? []), workers];
  const layout = weightLayout(model);
  const trainable = layout.trainable.map((i) => layout.variables[i]!);
  const nonTrainableSize = subsetSize(layout, layout.nonTrainable);
  const gradSize = subsetSize(layout, layout.trainable);
  const sizes = shardSizes(B, workers);

  const { pool } = await GradientPool.start(workers, backend, await modelArtifacts(model));
  const started = performance.now() - state.elapsedSeconds * 1000;
  // No head-only epochs here (parallel/run.ts refuses them with workers): the decay runs from the start.
  const schedule = { ...config, headEpochs: 0 };
  const clock = (): RunClock => ({ elapsedSeconds: (performance.now() - started) / 1000, headEndSeconds: 0 });
  const validation = data.validation;
  const end: EpochEnd = {
    state, config, model, optimizer, hooks, started, average,
    validation: validation && {
      labels: validation.labels,
      numClasses: data.numClasses,
      predict: () => pool.predict(readFlat(layout), validation.table.pixels, validation.labels.length, s2, data.numClasses),
    },
  };
  let stop: string | null = null;
  // One batch's buffers, filled again for every batch (the shards are copied out of it).
  const batch = newBatch(B, s2, data.numClasses);
  try {
    for (let epoch = state.epoch; epoch < config.epochs; epoch++) {
      const draws = epochBatches(data, config, weights, epoch);
      // The single-thread trainer's batch b (the same images, augmentation, targets and mixing),
      // cut into shards; each shard's buffers are copies of its own, as they are moved to its worker.
      const prepare = (b: number): Shard[] => {
        const mixed = draws.fill(b, batch).partner !== null;
        let from = 0;
        return sizes.map((count, k) => {
          const to = from + count;
          const seed = k === 0 ? deriveSeed(config.seed, 'dropout', epoch, b) : deriveSeed(config.seed, 'dropout', epoch, b, k);
          // Target rows travel when they are not the one-hot labels (a teacher, or mixing).
          const targets = teacher || mixed ? batch.targets.slice(from * data.numClasses, to * data.numClasses) : undefined;
          const shard: Shard = {
            x: batch.x.slice(from * s2, to * s2),
            labels: batch.labels.slice(from, to),
            lossWeights: batch.lossWeights.slice(from, to),
            ...(targets ? { targets } : {}),
            count,
            seed,
          };
          from = to;
          return shard;
        });
      };
      const epochStart = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let next: Shard[] | null = batches > 0 ? prepare(0) : null;
      for (let b = 0; b < batches; b++) {
        const lr = scheduledRate(schedule, epoch, b, batches, clock());
        setLearningRate(optimizer, lr);
        // Each shard's gradients are added to the sum as they arrive.
        const grad = new Float32Array(gradSize);
        const moving = new Float32Array(nonTrainableSize);
        let loss = 0;
        const pending = pool.stepEach(readFlat(layout), next!, B, data.numClasses).map((p, k) =>
          p.then((r) => {
            const g = r.grads;
            for (let i = 0; i < grad.length; i++) grad[i] = grad[i]! + g[i]!;
            const f = sizes[k]! / B;
            for (let i = 0; i < moving.length; i++) moving[i] = moving[i]! + r.state[i]! * f;
            loss += r.loss;
            correct += r.hits;
          }),
        );
        // Augment the next batch while the workers compute this one.
        next = b + 1 < batches ? prepare(b + 1) : null;
        await Promise.all(pending);
        // The replicas' moving statistics first: a tied optimizer ties them again as it steps.
        writeFlat(layout, moving, layout.nonTrainable);
        tf.tidy(() => {
          if (config.weightDecay > 0) {
            const kernels = trainable.filter((v) => v.shape.length > 1);
            loss += (tf.addN(kernels.map((v) => tf.sum(tf.square(v)))).dataSync()[0]! * config.weightDecay) / 2;
          }
          const named: { name: string; tensor: tf.Tensor }[] = [];
          let o = 0;
          for (const v of trainable) {
            let g: tf.Tensor = tf.tensor(grad.subarray(o, o + v.size), v.shape, 'float32');
            if (config.weightDecay > 0 && v.shape.length > 1) g = tf.add(g, tf.mul(v, config.weightDecay));
            named.push({ name: v.name, tensor: g });
            o += v.size;
          }
          optimizer.applyGradients(named);
        });
        await hooks.onStep?.(pool, layout);

        lossSum += loss * B;
        seen += B;
        hooks.onProgress?.(progressEvent(config, { epoch, batches, lossSum, correct, seen, startedMs: epochStart }, b, B));
        if (stopWithinEpoch(end)) break;
      }
      // The rate reported is the one the last step took (by the clock under --schedule time).
      const report = epochReport(schedule, { epoch, batches, lossSum, correct, seen, startedMs: epochStart }, clock());
      const ended = await endEpoch(end, report, bestWeights);
      bestWeights = ended.best;
      stop = ended.stop;
      if (stop) break;
    }
  } finally {
    await pool.close();
  }
  return { ...finishRun(end, data, bestWeights, stop), workers };
}

