// The inference runners and which batch goes where: each batch to the least busy runner that has
// room (at most maxQueuedPerRunner batches each: one computing, the next already delivered).
//
// ONNX Runtime runs in onnxWorkers threads, each with onnx.threads intra-op threads of its own;
// when it cannot start, the TensorFlow.js backends after it in the candidate list take over, with
// a PW_E_ONNX_RUNTIME warning, never a stop.
import type { Logger } from '../log.js';
import { PlankwatchError } from '../errors.js';
import { backendCandidates, isNative, type BackendInfo, type BackendName, type BackendRequest } from './backend.js';
import type { BatchInput, BatchOutput, EngineMemory, GenerationSpec, LoadReport } from './engine.js';
import { DEFAULT_ONNX_SETTINGS, onnxLayout, preloadOnnxRuntime, type OnnxSettings } from './onnx-runtime.js';
import { LocalRunner, type Runner } from './runner.js';
import { WorkerRunner } from './worker-runner.js';

export interface WorkerPoolOptions {
  backend: BackendRequest;
  /** ONNX Runtime's providers and intra-op threads per inference thread (classify.onnxProviders, classify.onnxThreads). */
  onnx?: OnnxSettings;
  /** Inference threads running ONNX Runtime (classify.workers; 0 or absent: onnxLayout's choice). */
  onnxWorkers?: number;
  /**
   * Worker threads for the wasm and cpu backends (0: run on the main thread, which then blocks
   * during each batch). Native TensorFlow always runs on the main thread; ONNX Runtime in one
   * thread of its own.
   */
  workers: number;
  /** Batches handed to one runner at a time (1 or 2). */
  maxQueuedPerRunner: number;
  logger: Logger;
}

export interface RunnerStats extends EngineMemory {
  id: number;
  thread: 'worker' | 'main';
  inFlight: number;
  batches: number;
}

interface Slot {
  runner: Runner;
  inFlight: number;
  batches: number;
  /** False while a replacement for a dead worker starts. */
  ready: boolean;
}

export class WorkerPool {
  private readonly opts: WorkerPoolOptions;
  private slots: Slot[] = [];
  private info: BackendInfo | null = null;
  /** ONNX Runtime's settings with the intra-op threads resolved (onnxLayout). */
  private onnxSettings: OnnxSettings = DEFAULT_ONNX_SETTINGS;
  /** Generations every runner must hold (replayed into a replacement worker). */
  private readonly loaded = new Map<number, GenerationSpec>();
  private nextRunnerId = 1;
  private stopping = false;
  private readonly idleWaiters: (() => void)[] = [];
  /** Told whenever a runner gains room for another batch. */
  onCapacity: () => void = () => {};

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
  }

  /** Choose and start the backend, then the runners. Throws PW_E_BACKEND. */
  async start(): Promise<BackendInfo> {
    const { logger } = this.opts;
    let candidates = backendCandidates(this.opts.backend);
    if (candidates[0] === 'onnx') {
      const rest = candidates.slice(1);
      try {
        await preloadOnnxRuntime();
        const settings = this.opts.onnx ?? DEFAULT_ONNX_SETTINGS;
        const layout = onnxLayout(this.opts.onnxWorkers ?? 0, settings.threads);
        this.onnxSettings = { ...settings, threads: layout.threads };
        return await this.startWorkers(layout.workers, ['onnx']);
      } catch (err) {
        if (rest.length === 0) throw err;
        logger.warn({ err, code: 'PW_E_ONNX_RUNTIME', fallback: rest }, `ONNX Runtime did not start; running the members on TensorFlow.js (${rest.join(', then ')}) instead`);
        candidates = rest;
      }
    }
    return this.startTfjs(candidates);
  }

  /** Start TensorFlow.js runners for the first of `candidates` that works. */
  private async startTfjs(candidates: BackendName[]): Promise<BackendInfo> {
    const { logger } = this.opts;
    const native = candidates.filter(isNative);
    const portable = candidates.filter((name) => !isNative(name) && name !== 'onnx');

    if (native.length > 0) {
      const local = new LocalRunner(this.nextRunnerId++);
      try {
        this.info = await local.init(native);
        this.slots = [{ runner: local, inFlight: 0, batches: 0, ready: true }];
        return this.info;
      } catch (err) {
        if (portable.length === 0) throw err;
        logger.warn({ err }, 'native TensorFlow is installed but did not start; falling back');
      }
    }

    const count = Math.floor(this.opts.workers);
    if (count < 1) {
      const local = new LocalRunner(this.nextRunnerId++);
      this.info = await local.init(portable);
      this.slots = [{ runner: local, inFlight: 0, batches: 0, ready: true }];
      return this.info;
    }
    return this.startWorkers(count, portable);
  }

  /** Start `count` worker threads on the first of `candidates` that works in the first of them. */
  private async startWorkers(count: number, candidates: BackendName[]): Promise<BackendInfo> {
    const onnx = this.onnxSettings;
    const first = this.newWorker();
    try {
      this.info = await first.init(candidates, onnx);
      const rest = Array.from({ length: count - 1 }, () => this.newWorker());
      this.slots = [first, ...rest].map((runner) => ({ runner, inFlight: 0, batches: 0, ready: true }));
      const info = this.info;
      await Promise.all(rest.map((r) => r.init([info.name], onnx)));
    } catch (err) {
      await this.closeAll([first, ...this.slots.map((s) => s.runner)]);
      this.slots = [];
      throw err;
    }
    return this.info;
  }

  backend(): BackendInfo {
    if (!this.info) throw new PlankwatchError('PW_E_INTERNAL', 'the inference pool is not started');
    return this.info;
  }

  size(): number {
    return this.slots.length;
  }

  /** Load a generation into every runner (in parallel); on failure nothing stays loaded. */
  async load(spec: GenerationSpec): Promise<LoadReport> {
    const results = await Promise.allSettled(this.slots.map((s) => s.runner.load(spec)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(this.slots.map((s) => s.runner.unload(spec.gen)));
      throw failed.reason;
    }
    this.loaded.set(spec.gen, spec);
    const converted = new Set(results.flatMap((r) => (r.status === 'fulfilled' ? r.value.converted : [])));
    return { converted: [...converted] };
  }

  async unload(gen: number): Promise<void> {
    this.loaded.delete(gen);
    await Promise.allSettled(this.slots.map((s) => s.runner.unload(gen)));
  }

  hasCapacity(): boolean {
    return !this.stopping && this.slots.some((s) => s.ready && s.inFlight < this.opts.maxQueuedPerRunner);
  }

  /** Batches handed to runners and not yet returned. */
  inFlight(): number {
    return this.slots.reduce((n, s) => n + s.inFlight, 0);
  }

  /** Run a batch on the least busy runner with room. Call only when hasCapacity(). */
  async dispatch(batch: BatchInput): Promise<BatchOutput> {
    let best: Slot | undefined;
    for (const s of this.slots) {
      if (!s.ready || s.inFlight >= this.opts.maxQueuedPerRunner) continue;
      if (!best || s.inFlight < best.inFlight) best = s;
    }
    if (!best) throw new PlankwatchError('PW_E_INTERNAL', 'no inference runner has room for a batch');
    const slot = best;
    const runner = slot.runner;
    slot.inFlight++;
    try {
      return await runner.run(batch);
    } finally {
      // A replaced runner's slot was reset when it died.
      if (slot.runner === runner) {
        slot.inFlight--;
        slot.batches++;
      }
      if (this.inFlight() === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      this.onCapacity();
    }
  }

  async stats(): Promise<RunnerStats[]> {
    return Promise.all(
      this.slots.map(async (s) => {
        const memory = s.ready ? await s.runner.memory().catch(() => ({ numTensors: -1, numBytes: -1 })) : { numTensors: -1, numBytes: -1 };
        return { id: s.runner.id, thread: s.runner instanceof LocalRunner ? 'main' : 'worker', inFlight: s.inFlight, batches: s.batches, ...memory } as RunnerStats;
      }),
    );
  }

  /** Wait for the batches in flight, then close every runner. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.inFlight() > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const runners = this.slots.map((s) => s.runner);
    this.slots = [];
    await this.closeAll(runners);
  }

  private newWorker(): WorkerRunner {
    return new WorkerRunner({ id: this.nextRunnerId++, logger: this.opts.logger, onExit: (runner, err) => this.replace(runner, err) });
  }

  /** A worker died: its batches were rejected; start a replacement with the same backend and models. */
  private replace(dead: Runner, err: Error): void {
    const slot = this.slots.find((s) => s.runner === dead);
    if (!slot || this.stopping || !this.info) return;
    const { logger } = this.opts;
    logger.error({ err, worker: dead.id }, 'inference thread died; starting a replacement');
    const runner = this.newWorker();
    slot.runner = runner;
    slot.ready = false;
    slot.inFlight = 0;
    const backend = this.info.name;
    void (async () => {
      try {
        await runner.init([backend], this.onnxSettings);
        for (const spec of this.loaded.values()) await runner.load(spec);
        if (this.stopping || slot.runner !== runner) return;
        slot.ready = true;
        logger.info({ worker: runner.id }, 'replacement inference thread ready');
        this.onCapacity();
      } catch (e) {
        logger.error({ err: e, worker: runner.id }, 'replacement inference thread failed to start; running with fewer threads');
        this.slots = this.slots.filter((s) => s !== slot);
        await runner.close().catch(() => {});
      }
    })();
  }

  private async closeAll(runners: Runner[]): Promise<void> {
    const results = await Promise.allSettled(runners.map((r) => r.close()));
    for (const r of results) if (r.status === 'rejected') this.opts.logger.warn({ err: r.reason }, 'inference runner did not close cleanly');
  }
}
