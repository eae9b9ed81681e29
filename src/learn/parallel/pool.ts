// The gradient workers of a parallel training run: start, one step over shards, prediction over
// chunks, weights of each replica (for tests), close.
import { Worker } from 'node:worker_threads';
import type { StepResult, TrainWorkerReply, TrainWorkerRequest, WorkerInfo, WorkerModel } from './protocol.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Request = DistributiveOmit<TrainWorkerRequest, 'id'>;

/**
 * How to start a worker. Compiled (dist/learn/parallel/*.js, or a bundle with worker.js beside
 * it), the worker is the .js file next to this module. Under the test runner and tsx, which run
 * the .ts sources, Node 20 does not apply loader hooks to a worker's entry module
 * (nodejs/node#47747), so a two-line bootstrap registers tsx in the worker and then imports it
 * (as src/classify/worker-runner.ts does).
 */
export function trainWorkerEntry(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./worker.js', import.meta.url), eval: false };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  const script = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return { script, eval: true };
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

class TrainWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private next = 1;
  private failure: Error | null = null;
  private closing = false;

  constructor(readonly index: number) {
    const entry = trainWorkerEntry();
    this.worker = new Worker(entry.script, { eval: entry.eval, name: `train-${index}` });
    this.worker.on('message', (reply: TrainWorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(`training worker ${index}: ${reply.error}`));
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.fail(new Error(`exited with code ${code}`));
    });
  }

  call<T>(req: Request, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id } as TrainWorkerRequest, transfer);
    });
  }

  private fail(err: Error): void {
    this.failure = new Error(`training worker ${this.index} stopped: ${err.message}`, { cause: err });
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    try {
      if (!this.failure) await this.call({ op: 'close' });
    } catch {
      // The thread is ended below either way.
    }
    this.closing = true;
    await this.worker.terminate();
  }
}

export interface Shard {
  x: Float32Array;
  labels: Int32Array;
  lossWeights: Float32Array;
  /** With a teacher: each image's target row (count × classes); absent: the one-hot label. */
  targets?: Float32Array;
  count: number;
  seed: number;
}

/** Sizes of n shards of a batch of `total` (as even as possible; the first ones one larger). */
export function shardSizes(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  const extra = total % n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}

export class GradientPool {
  private readonly workers: TrainWorker[];
  /** The weights every worker reads at the start of a step or prediction (shared memory). */
  private readonly shared: Float32Array;

  private constructor(workers: TrainWorker[], shared: Float32Array) {
    this.workers = workers;
    this.shared = shared;
  }

  /** Publish the weights for the next request; only while no request is running. */
  private publish(weights: Float32Array): void {
    if (weights.length !== this.shared.length) throw new Error(`weight vector of ${weights.length} values, the workers hold ${this.shared.length}`);
    this.shared.set(weights);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Start n workers, each with its own backend and a replica built from `model`. */
  static async start(n: number, backend: 'wasm' | 'cpu', model: WorkerModel): Promise<{ pool: GradientPool; info: WorkerInfo[] }> {
    if (!Number.isInteger(n) || n < 1) throw new Error(`workers must be a whole number of at least 1, not ${n}`);
    const workers = Array.from({ length: n }, (_, i) => new TrainWorker(i));
    const values = model.weightSpecs.reduce((t, w) => t + w.shape.reduce((a, b) => a * b, 1), 0);
    const shared = new SharedArrayBuffer(values * 4);
    const pool = new GradientPool(workers, new Float32Array(shared));
    try {
      // Every worker gets its own copy of the initial model (the buffer is cloned, not moved).
      const info = await Promise.all(workers.map((w) => w.call<WorkerInfo>({ op: 'init', backend, model, weights: shared })));
      for (const i of info) if (i.weights !== values) throw new Error(`a worker's replica has ${i.weights} weight values, the model ${values}`);
      return { pool, info };
    } catch (err) {
      await pool.close();
      throw err;
    }
  }

  /**
   * One step: worker i sets its replica to `weights` (published in shared memory, so the
   * weights are copied once, not once per worker), then computes shard i. The shards' x,
   * labels and lossWeights buffers are moved to the workers.
   */
  step(weights: Float32Array, shards: Shard[], scale: number, numClasses: number): Promise<StepResult[]> {
    return Promise.all(this.stepEach(weights, shards, scale, numClasses));
  }

  /** As step(), one promise per worker (to use each result as soon as it arrives). */
  stepEach(weights: Float32Array, shards: Shard[], scale: number, numClasses: number): Promise<StepResult>[] {
    if (shards.length !== this.workers.length) throw new Error(`${shards.length} shards for ${this.workers.length} workers`);
    this.publish(weights);
    return shards.map((s, i) =>
      this.workers[i]!.call<StepResult>(
        { op: 'step', x: s.x, labels: s.labels, lossWeights: s.lossWeights, ...(s.targets ? { targets: s.targets } : {}), count: s.count, scale, numClasses, seed: s.seed },
        [s.x.buffer as ArrayBuffer, s.labels.buffer as ArrayBuffer, s.lossWeights.buffer as ArrayBuffer, ...(s.targets ? [s.targets.buffer as ArrayBuffer] : [])],
      ),
    );
  }

  /** Probabilities for `count` prepared images (imageBytes each: size² · channels), split over the workers. */
  async predict(weights: Float32Array, pixels: Uint8Array, count: number, imageBytes: number, numClasses: number, batchSize = 64): Promise<Float32Array> {
    this.publish(weights);
    const sizes = shardSizes(count, this.workers.length);
    let start = 0;
    const parts = await Promise.all(
      sizes.map((c, i) => {
        const from = start;
        start += c;
        if (c === 0) return Promise.resolve(new Float32Array(0));
        const chunk = pixels.slice(from * imageBytes, (from + c) * imageBytes);
        return this.workers[i]!.call<Float32Array>({ op: 'predict', pixels: chunk, count: c, batchSize }, [chunk.buffer as ArrayBuffer]);
      }),
    );
    const out = new Float32Array(count * numClasses);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Every replica's weights (model.weights order, flattened): to check that they agree. */
  weights(): Promise<Float32Array[]> {
    return Promise.all(this.workers.map((w) => w.call<Float32Array>({ op: 'weights' })));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
