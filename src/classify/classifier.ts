// The classify stage: prepared frames in, ensemble predictions out, through micro-batches run on
// a pool of inference threads. Owns the active ensemble and swaps it between batches.
import type { Logger } from '../log.js';
import { PlankwatchError } from '../errors.js';
import type { EnsemblePrediction, Part, PreparedFrame, PreprocessSpec } from '../types.js';
import { preparedBackground } from '../preprocess/prepare.js';
import type { BackendInfo, BackendName, BackendRequest } from './backend.js';
import { Batcher } from './batcher.js';
import type { GenerationSpec } from './engine.js';
import type { OnnxSettings } from './onnx-runtime.js';
import type { CameraProfile } from '../preprocess/index.js';
import { loadEnsemble, type LoadedEnsemble } from './ensemble-loader.js';
import type { EnsembleFile, MemberMetrics, VotingRule } from './meta.js';
import { ONNX_FILE } from './onnx-export.js';
import { ensemblePrediction } from './prediction.js';
import type { TtaTransform } from './tta.js';
import { WorkerPool, type RunnerStats } from './worker-pool.js';

export interface ClassifierOptions {
  /** Path of the ensemble file (models/ensemble.json). */
  ensembleFile: string;
  /** Folder holding <member>/<version>/ model folders. */
  modelsDir: string;
  backend: BackendRequest;
  /** ONNX Runtime's execution providers and intra-op threads per inference thread (classify.onnxProviders, classify.onnxThreads). */
  onnx?: OnnxSettings;
  /** Inference threads running ONNX Runtime (classify.workers; 0 or absent: chosen for the cores, see onnxLayout). */
  onnxWorkers?: number;
  /**
   * Inference worker threads for wasm/cpu, one wasm instance each (the number of CPU cores is a good
   * value; 0 runs inference on the main thread). Native TensorFlow runs on the main thread regardless.
   */
  workers: number;
  /** Most frames in one batch. */
  maxBatch: number;
  /** Longest a frame waits for its batch to fill before the batch goes out anyway. */
  maxWaitMs: number;
  /** Classes listed in each top-k (ensemble and members). */
  topK: number;
  /** The camera (config `camera:`): a member that cannot serve it is refused (PW_E_CAMERA_PROFILE). Absent: not checked. */
  camera?: CameraProfile;
  /** Batches handed to one inference thread at a time (default 2: one computing, one waiting). */
  maxQueuedPerWorker?: number;
  /** Told after each batch: its size and its latency (hand-off to probabilities back), for metrics. */
  onBatch?: (size: number, ms: number) => void;
  logger: Logger;
}

export interface ModelInfo {
  ensembleVersion: string;
  voting: VotingRule;
  tta: TtaTransform[];
  /** Union of the members' classes. */
  classes: string[];
  members: {
    name: string;
    version: string;
    architecture: string;
    classes: number;
    inputSize: number;
    weight: number;
    /** The views this member averages. */
    tta: TtaTransform[];
    /** The numeric metrics from the member's meta.json. */
    metrics: Record<string, number>;
  }[];
  /** What the preprocess stage must produce for every frame (key: inputKey; channels absent: 1). */
  inputs: { key: string; size: number; spec: PreprocessSpec; channels?: 3 }[];
  backend: BackendName;
  /** ONNX Runtime's execution provider ("cpu", "cuda", "tensorrt"; null for the TensorFlow.js backends). */
  provider: string | null;
  /** Whether the wasm binary uses SIMD (null for other backends). */
  simd: boolean | null;
  /** Inference threads (1 for native TensorFlow, which runs on the main thread). */
  workers: number;
  /** ms since epoch when this ensemble became active. */
  sinceMs: number;
}

export interface ClassifierStats {
  backend: BackendInfo | null;
  ensembleVersion: string | null;
  /** Frames accepted and not yet answered (waiting + in batches). */
  queueDepth: number;
  /** Frames waiting for a batch. */
  waiting: number;
  inFlightBatches: number;
  batches: number;
  frames: number;
  largestBatch: number;
  /** Time from handing a batch to a thread to having its probabilities back. */
  batchLatencyMs: { last: number; mean: number; p95: number; max: number };
  workers: RunnerStats[];
}

interface Generation {
  id: number;
  ensemble: LoadedEnsemble;
  batchesInFlight: number;
  retired: boolean;
  activeSince: number;
}

const LATENCY_WINDOW = 200;

export class Classifier implements Part {
  readonly name = 'classify';
  private readonly opts: ClassifierOptions;
  private pool: WorkerPool | null = null;
  private batcher: Batcher<PreparedFrame, EnsemblePrediction> | null = null;
  private readonly generations = new Map<number, Generation>();
  private active: Generation | null = null;
  /** Kept loaded after a swap for frames prepared for it before the swap. */
  private previous: Generation | null = null;
  private nextGen = 1;
  private swapping: Promise<unknown> = Promise.resolve();
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private batches = 0;
  private frames = 0;
  private largestBatch = 0;
  private readonly latencies: number[] = [];
  private latencySum = 0;
  private latencyMax = 0;

  constructor(opts: ClassifierOptions) {
    this.opts = opts;
  }

  /** Start the backend and the inference threads, then load the ensemble. Throws PW_E_BACKEND or PW_E_MODEL_LOAD. */
  async start(): Promise<ModelInfo> {
    if (this.state !== 'new') throw new PlankwatchError('PW_E_INTERNAL', 'Classifier.start() called twice');
    const { logger } = this.opts;
    const pool = new WorkerPool({
      backend: this.opts.backend,
      onnx: this.opts.onnx,
      onnxWorkers: this.opts.onnxWorkers,
      workers: this.opts.workers,
      maxQueuedPerRunner: this.opts.maxQueuedPerWorker ?? 2,
      logger,
    });
    const batcher = new Batcher<PreparedFrame, EnsemblePrediction>(
      {
        maxBatch: Math.max(1, this.opts.maxBatch),
        maxWaitMs: Math.max(0, this.opts.maxWaitMs),
        canDispatch: () => pool.hasCapacity(),
        key: (frame) => this.generationFor(frame).id,
      },
      (frames, gen) => this.runBatch(frames, gen),
    );
    pool.onCapacity = () => batcher.pump();
    const backend = await pool.start();
    if (backend.onnx) {
      const { provider, threads, version, passedOver } = backend.onnx;
      logger.info(
        { backend: backend.name, requested: this.opts.backend, provider, threads: pool.size(), intraOpThreads: threads, onnxRuntime: version, passedOver: passedOver.map((p) => `${p.provider}: ${p.reason}`) },
        `inference backend started: ONNX Runtime, ${provider} execution provider${passedOver.length > 0 ? ` (${passedOver.map((p) => p.provider).join(', ')} passed over: see passedOver)` : ''}, ${pool.size()} inference thread(s) of ${threads} intra-op thread(s)`,
      );
    } else {
      logger.info({ backend: backend.name, requested: this.opts.backend, simd: backend.simd, threads: pool.size(), mainThread: backend.native }, 'inference backend started');
    }
    this.pool = pool;
    this.batcher = batcher;
    this.state = 'running';
    try {
      return await this.swapEnsemble(this.opts.ensembleFile);
    } catch (err) {
      this.state = 'stopped';
      await pool.stop();
      throw err;
    }
  }

  /** Classify one prepared frame; resolves when its batch has run. */
  classify(frame: PreparedFrame): Promise<EnsemblePrediction> {
    if (this.state !== 'running' || !this.batcher) {
      return Promise.reject(new PlankwatchError('PW_E_INTERNAL', `the classifier is ${this.state === 'new' ? 'not started' : 'stopped'}`));
    }
    return this.batcher.add(frame);
  }

  /**
   * Load another ensemble in every inference thread, then make it the active one. Batches already
   * handed out finish on the old one; every batch formed afterwards uses the new one, except for
   * frames that lack the new ensemble's input sizes (prepared before the swap), which the previous
   * ensemble still classifies. On failure the active ensemble stays.
   */
  swapEnsemble(file: string | EnsembleFile): Promise<ModelInfo> {
    const next = this.swapping.then(() => this.doSwap(file));
    this.swapping = next.catch(() => {});
    return next;
  }

  /** The inputs the preprocess stage must produce for each frame (for the active ensemble). */
  inputs(): { key: string; size: number; spec: PreprocessSpec; channels?: 3 }[] {
    return this.active ? this.active.ensemble.inputs.map((i) => ({ key: i.key, size: i.size, spec: { ...i.spec }, ...(i.channels ? { channels: i.channels } : {}) })) : [];
  }

  modelInfo(): ModelInfo {
    if (!this.active || !this.pool) throw new PlankwatchError('PW_E_INTERNAL', 'the classifier has no active ensemble');
    const { ensemble } = this.active;
    const backend = this.pool.backend();
    return {
      ensembleVersion: ensemble.file.version,
      voting: ensemble.file.voting,
      tta: [...ensemble.tta],
      classes: [...ensemble.classes],
      members: ensemble.members.map((m) => ({
        name: m.name,
        version: m.version,
        architecture: m.meta.architecture,
        classes: m.meta.classes.length,
        inputSize: m.meta.input.size,
        weight: m.weight,
        tta: [...m.tta],
        metrics: numericMetrics(m.meta.metrics),
      })),
      inputs: this.inputs(),
      backend: backend.name,
      provider: backend.onnx?.provider ?? null,
      simd: backend.simd ?? null,
      workers: this.pool.size(),
      sinceMs: this.active.activeSince,
    };
  }

  /** Frames accepted and not yet answered. */
  queueDepth(): number {
    return this.batcher ? this.batcher.pending() + this.batcher.running() : 0;
  }

  async stats(): Promise<ClassifierStats> {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      backend: this.pool && this.state !== 'stopped' ? this.pool.backend() : null,
      ensembleVersion: this.active?.ensemble.file.version ?? null,
      queueDepth: this.queueDepth(),
      waiting: this.batcher?.pending() ?? 0,
      inFlightBatches: this.pool?.inFlight() ?? 0,
      batches: this.batches,
      frames: this.frames,
      largestBatch: this.largestBatch,
      batchLatencyMs: {
        last: this.latencies[this.latencies.length - 1] ?? 0,
        mean: this.batches > 0 ? this.latencySum / this.batches : 0,
        p95: sorted.length > 0 ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))]! : 0,
        max: this.latencyMax,
      },
      workers: this.pool && this.state !== 'stopped' ? await this.pool.stats() : [],
    };
  }

  /** Classify every frame already accepted (their promises resolve), then stop the threads. */
  async stop(): Promise<void> {
    if (this.state !== 'running') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    const { logger } = this.opts;
    try {
      await this.batcher?.drain();
    } catch (err) {
      logger.error({ err }, 'finishing the queued frames failed');
    }
    await this.swapping;
    try {
      await this.pool?.stop();
    } catch (err) {
      logger.error({ err }, 'stopping the inference threads failed');
    }
    this.state = 'stopped';
    logger.info({ batches: this.batches, frames: this.frames }, 'classifier stopped');
  }

  private async doSwap(file: string | EnsembleFile): Promise<ModelInfo> {
    const pool = this.pool;
    if (!pool || this.state !== 'running') throw new PlankwatchError('PW_E_INTERNAL', 'the classifier is not running');
    const ensemble = await loadEnsemble(file, this.opts.modelsDir, this.opts.camera);
    const gen: Generation = {
      id: this.nextGen++,
      ensemble,
      batchesInFlight: 0,
      retired: false,
      activeSince: 0,
    };
    const spec: GenerationSpec = {
      gen: gen.id,
      members: ensemble.members.map((m) => ({
        id: `${m.name}/${m.version}`,
        dir: m.dir,
        inputSize: m.meta.input.size,
        ...(m.meta.input.channels === 3 ? { channels: 3 as const } : {}),
        inputKey: m.inputKey,
        numClasses: m.meta.classes.length,
        tta: m.tta,
        fill: preparedBackground(m.meta.preprocessing),
        onnxSha256: m.meta.checksums?.[ONNX_FILE] ?? null,
        onnxIo: m.meta.onnx ?? null,
      })),
    };
    const started = performance.now();
    const report = await pool.load(spec);
    if (report.converted.length > 0 && pool.backend().name === 'onnx') {
      this.opts.logger.warn(
        { members: report.converted },
        `member version(s) without ${ONNX_FILE}: converted from model.json at load (run \`plankwatch models convert\` to store it beside them)`,
      );
    }
    // The switch itself: synchronous, so it falls between two batches.
    this.generations.set(gen.id, gen);
    const retired = this.previous;
    this.previous = this.active;
    this.active = gen;
    gen.activeSince = Date.now();
    if (retired) this.retire(retired);
    const info = this.modelInfo();
    this.opts.logger.info(
      {
        ensembleVersion: info.ensembleVersion,
        voting: info.voting,
        tta: info.tta,
        members: info.members.map((m) => `${m.name}/${m.version}`),
        classes: info.classes.length,
        loadMs: Math.round(performance.now() - started),
      },
      'ensemble active',
    );
    return info;
  }

  private retire(gen: Generation): void {
    gen.retired = true;
    if (gen.batchesInFlight === 0) this.unload(gen);
  }

  private unload(gen: Generation): void {
    this.generations.delete(gen.id);
    this.pool?.unload(gen.id).catch((err: unknown) => this.opts.logger.warn({ err, gen: gen.id }, 'unloading an old ensemble failed'));
  }

  /** The generation that classifies this frame: the active one if the frame has its inputs. */
  private generationFor(frame: PreparedFrame): Generation {
    for (const gen of [this.active, this.previous]) if (gen && hasInputs(frame, gen.ensemble.inputs)) return gen;
    const keys = this.active?.ensemble.inputs.map((i) => i.key).join(', ') ?? 'none';
    throw new PlankwatchError(
      'PW_E_INTERNAL',
      `Frame ${frame.file.relPath} lacks a prepared input the ensemble needs (inputs ${keys}); prepare frames with Classifier.inputs().`,
    );
  }

  /** Build the batch tensors' data and hand it to the pool (synchronously: the batcher relies on it). */
  private runBatch(frames: PreparedFrame[], genId: number): Promise<EnsemblePrediction[]> {
    const pool = this.pool;
    const gen = this.generations.get(genId);
    if (!pool || !gen) return Promise.reject(new PlankwatchError('PW_E_INTERNAL', `ensemble generation ${genId} is gone`));
    const inputs = gen.ensemble.inputs.map(({ key, size, channels = 1 as 1 | 3 }) => {
      const area = size * size * channels;
      const pixels = new Float32Array(frames.length * area);
      frames.forEach((f, i) => pixels.set(f.inputs.get(key)!.pixels, i * area));
      return { key, size, channels, pixels };
    });
    gen.batchesInFlight++;
    const started = performance.now();
    const { topK } = this.opts;
    const counts = gen.ensemble.members.map((m) => m.meta.classes.length);
    return pool
      .dispatch({ gen: gen.id, count: frames.length, inputs })
      .then((out) => {
        this.record(frames.length, performance.now() - started);
        return frames.map((_, i) =>
          ensemblePrediction(
            gen.ensemble,
            out.probs.map((p, m) => p.subarray(i * counts[m]!, (i + 1) * counts[m]!)),
            topK,
          ),
        );
      })
      .finally(() => {
        gen.batchesInFlight--;
        if (gen.retired && gen.batchesInFlight === 0) this.unload(gen);
      });
  }

  private record(size: number, ms: number): void {
    this.batches++;
    this.frames += size;
    this.largestBatch = Math.max(this.largestBatch, size);
    this.latencySum += ms;
    this.latencyMax = Math.max(this.latencyMax, ms);
    this.latencies.push(ms);
    if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
    this.opts.onBatch?.(size, ms);
  }
}

function numericMetrics(metrics: MemberMetrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(metrics ?? {})) if (typeof value === 'number' && Number.isFinite(value)) out[key] = value;
  return out;
}

function hasInputs(frame: PreparedFrame, inputs: { key: string; size: number; channels?: 3 }[]): boolean {
  return inputs.every(({ key, size, channels = 1 }) => frame.inputs.get(key)?.pixels.length === size * size * channels);
}
