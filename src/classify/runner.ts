// A runner owns one InferenceEngine: in a worker thread (WorkerRunner) or in the calling thread
// (LocalRunner, for native TensorFlow, which must be loaded once per process). The pool sees only
// this interface.
import { PlankwatchError, type ErrorCode } from '../errors.js';
import { initBackend, type BackendInfo, type BackendName } from './backend.js';
import { InferenceEngine, type BatchInput, type BatchOutput, type EngineMemory, type GenerationSpec, type LoadReport } from './engine.js';
import type { OnnxSettings } from './onnx-runtime.js';

export interface Runner {
  readonly id: number;
  /** Start a backend: the first candidate that works (onnx: with these settings). */
  init(candidates: BackendName[], onnx?: OnnxSettings): Promise<BackendInfo>;
  load(spec: GenerationSpec): Promise<LoadReport>;
  run(batch: BatchInput): Promise<BatchOutput>;
  unload(gen: number): Promise<void>;
  memory(): Promise<EngineMemory>;
  close(): Promise<void>;
}

/** Requests and replies between WorkerRunner and inference-worker. */
export type WorkerRequest =
  | { id: number; op: 'init'; candidates: BackendName[]; onnx?: OnnxSettings }
  | { id: number; op: 'load'; spec: GenerationSpec }
  | { id: number; op: 'run'; batch: BatchInput }
  | { id: number; op: 'unload'; gen: number }
  | { id: number; op: 'memory' }
  | { id: number; op: 'close' };

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: SerializedError };

export interface SerializedError {
  message: string;
  code?: ErrorCode;
  detail?: string;
  stack?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof PlankwatchError) return { message: err.message, code: err.code, detail: err.detail, stack: err.stack };
  if (err instanceof Error) return { message: err.message, stack: err.stack };
  return { message: String(err) };
}

/** Rebuild an error from the engine: its own code if it had one, else `fallback`. */
export function engineError(e: SerializedError, fallback: ErrorCode, context: string): PlankwatchError {
  const error = e.code ? new PlankwatchError(e.code, e.detail ?? e.message) : new PlankwatchError(fallback, `${context}: ${e.message}`);
  if (e.stack) error.stack = `${error.name}: ${error.message}\n    (in inference thread) ${e.stack}`;
  return error;
}

/**
 * The engine in the calling thread (native TensorFlow, or classify.workers 0). Batches run after
 * the current tick, and the thread waits for each.
 */
export class LocalRunner implements Runner {
  readonly id: number;
  private engine = new InferenceEngine();

  constructor(id: number) {
    this.id = id;
  }

  async init(candidates: BackendName[], onnx?: OnnxSettings): Promise<BackendInfo> {
    const info = await initBackend(candidates, onnx);
    this.engine = new InferenceEngine(info.name === 'onnx' ? 'onnx' : 'tfjs');
    return info;
  }

  async load(spec: GenerationSpec): Promise<LoadReport> {
    try {
      return await this.engine.load(spec);
    } catch (err) {
      throw engineError(serializeError(err), 'PW_E_MODEL_LOAD', 'loading the ensemble');
    }
  }

  run(batch: BatchInput): Promise<BatchOutput> {
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        this.engine.run(batch).then(resolve, (err: unknown) => reject(engineError(serializeError(err), 'PW_E_INTERNAL', 'inference')));
      });
    });
  }

  async unload(gen: number): Promise<void> {
    await this.engine.unload(gen);
  }

  async memory(): Promise<EngineMemory> {
    return this.engine.memory();
  }

  async close(): Promise<void> {
    await this.engine.dispose();
  }
}
