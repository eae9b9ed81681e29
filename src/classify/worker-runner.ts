// The engine in a worker thread: requests and replies over postMessage, inputs and outputs moved
// as transferable Float32Array buffers.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { PlankwatchError, type ErrorCode } from '../errors.js';
import type { BackendInfo, BackendName } from './backend.js';
import type { BatchInput, BatchOutput, EngineMemory, GenerationSpec, LoadReport } from './engine.js';
import type { OnnxSettings } from './onnx-runtime.js';
import { engineError, type Runner, type WorkerReply, type WorkerRequest } from './runner.js';

type Op = WorkerRequest['op'];
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * How to start the worker. Compiled (dist/classify/*.js), the worker is the .js file next to this
 * one. Under the test runner, which runs the .ts sources, it is the .ts file: Node 20 does not apply
 * loader hooks given in a Worker's execArgv (`--import tsx`) to the worker's entry module
 * (nodejs/node#47747), so a two-line bootstrap registers tsx in the worker and then imports it.
 */
export function workerEntry(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./inference-worker.js', import.meta.url), eval: false };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./inference-worker.ts', import.meta.url).href;
  const script = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return { script, eval: true };
}

interface Call {
  op: Op;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

const FALLBACK_CODE: Record<Op, ErrorCode> = {
  init: 'PW_E_BACKEND',
  load: 'PW_E_MODEL_LOAD',
  run: 'PW_E_INTERNAL',
  unload: 'PW_E_INTERNAL',
  memory: 'PW_E_INTERNAL',
  close: 'PW_E_INTERNAL',
};

export interface WorkerRunnerOptions {
  id: number;
  logger: Logger;
  /** Called once if the thread dies without close() being asked for. */
  onExit: (runner: WorkerRunner, err: Error) => void;
}

export class WorkerRunner implements Runner {
  readonly id: number;
  private readonly opts: WorkerRunnerOptions;
  private worker: Worker | null = null;
  private readonly calls = new Map<number, Call>();
  private nextCall = 1;
  private closing = false;

  constructor(opts: WorkerRunnerOptions) {
    this.opts = opts;
    this.id = opts.id;
  }

  async init(candidates: BackendName[], onnx?: OnnxSettings): Promise<BackendInfo> {
    const entry = workerEntry();
    const worker = new Worker(entry.script, { eval: entry.eval, name: `inference-${this.id}` });
    this.worker = worker;
    worker.on('message', (reply: WorkerReply) => this.settle(reply));
    worker.on('error', (err) => this.died(err));
    worker.on('exit', (code) => this.died(new Error(`inference thread ${this.id} exited with code ${code}`)));
    return (await this.call({ op: 'init', candidates, onnx })) as BackendInfo;
  }

  async load(spec: GenerationSpec): Promise<LoadReport> {
    return (await this.call({ op: 'load', spec })) as LoadReport;
  }

  async run(batch: BatchInput): Promise<BatchOutput> {
    return (await this.call({ op: 'run', batch }, batch.inputs.map((i) => i.pixels.buffer as ArrayBuffer))) as BatchOutput;
  }

  async unload(gen: number): Promise<void> {
    await this.call({ op: 'unload', gen });
  }

  async memory(): Promise<EngineMemory> {
    return (await this.call({ op: 'memory' })) as EngineMemory;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker || this.closing) return;
    try {
      await this.call({ op: 'close' });
    } catch (err) {
      this.opts.logger.warn({ err, worker: this.id }, 'inference thread did not release its models cleanly');
    }
    this.closing = true;
    await worker.terminate();
    this.worker = null;
  }

  private call(req: DistributiveOmit<WorkerRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    const worker = this.worker;
    if (!worker || this.closing) return Promise.reject(new PlankwatchError('PW_E_INTERNAL', `inference thread ${this.id} is not running`));
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { op: req.op, resolve, reject });
      worker.postMessage({ ...req, id } as WorkerRequest, transfer);
    });
  }

  private settle(reply: WorkerReply): void {
    const call = this.calls.get(reply.id);
    if (!call) return;
    this.calls.delete(reply.id);
    if (reply.ok) call.resolve(reply.result);
    else call.reject(engineError(reply.error, FALLBACK_CODE[call.op], `inference thread ${this.id}, ${call.op}`));
  }

  private died(err: Error): void {
    if (this.closing || !this.worker) return;
    this.worker = null;
    const error = new PlankwatchError('PW_E_INTERNAL', `inference thread ${this.id} stopped: ${err.message}`, { cause: err });
    for (const call of this.calls.values()) call.reject(error);
    this.calls.clear();
    this.opts.onExit(this, error);
  }
}
