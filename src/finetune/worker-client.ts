// Starting a fine-tuning job in its own worker thread and waiting for its result. One thread per
// job, ended afterwards, so the memory of training goes back at once.
import { Worker } from 'node:worker_threads';
import { preloadOnnxRuntime } from '../classify/onnx-runtime.js';
import type { FinetuneJob, FinetuneJobResult, JobProgress } from './job.js';
import type { FinetuneWorkerMessage } from './worker.js';

/**
 * The worker script. Compiled, it is worker.js beside this file. Under the test runner (which
 * runs the .ts sources) a bootstrap registers tsx in the thread first: Node 20 does not apply
 * `--import tsx` from execArgv to a worker's entry module.
 */
function workerEntry(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./worker.js', import.meta.url), eval: false };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  return { script: `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`, eval: true };
}

/** The job was stopped on purpose (cancel()): not a failure. */
export class JobCancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'JobCancelled';
  }
}

export interface RunningJob {
  result: Promise<FinetuneJobResult>;
  /** Stop the thread (the result rejects with JobCancelled). */
  cancel(): Promise<void>;
}

export function startFinetuneWorker(job: FinetuneJob, hooks: { onProgress?: (p: JobProgress) => void; onLog?: (line: string) => void } = {}): RunningJob {
  const entry = workerEntry();
  let worker: Worker | null = null;
  let settled = false;
  let cancelled = false;
  // ONNX Runtime (head fine-tuning runs the frozen network on it) loads in the main thread first:
  // a native addon first loaded by a worker thread cannot be loaded by any other thread after. A
  // failure here is left to the job, which says what it means for each member.
  const result = preloadOnnxRuntime().catch(() => undefined).then(
    () =>
      new Promise<FinetuneJobResult>((resolve, reject) => {
        if (cancelled) {
          reject(new JobCancelled());
          return;
        }
        const w = new Worker(entry.script, { eval: entry.eval, name: `finetune-${job.runId}` });
        worker = w;
        w.on('message', (msg: FinetuneWorkerMessage) => {
          if (msg.type === 'progress') hooks.onProgress?.(msg);
          else if (msg.type === 'log') hooks.onLog?.(msg.line);
          else if (msg.type === 'result') {
            settled = true;
            resolve(msg.result);
            void w.terminate();
          } else {
            settled = true;
            const err = new Error(msg.message);
            if (msg.stack) err.stack = msg.stack;
            reject(err);
            void w.terminate();
          }
        });
        w.on('error', (err) => {
          if (settled) return;
          settled = true;
          reject(err);
        });
        w.on('exit', (code) => {
          if (settled) return;
          settled = true;
          reject(cancelled ? new JobCancelled() : new Error(`fine-tuning thread exited with code ${code}`));
        });
        w.postMessage(job);
      }),
  );
  return {
    result,
    async cancel() {
      cancelled = true;
      await worker?.terminate();
    },
  };
}
