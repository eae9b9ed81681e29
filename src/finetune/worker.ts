// The fine-tuning thread: runs one job on its own TensorFlow.js instance (its own wasm module) and
// its own ONNX Runtime sessions (head fine-tuning), at a lower scheduling priority than the
// inference threads (threads it starts inherit it), and reports progress and the result.
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { runFinetuneJob, type FinetuneJob } from './job.js';

export type FinetuneWorkerMessage =
  | { type: 'progress'; member: string; epoch: number; epochs: number; batch: number; batches: number; loss: number }
  | { type: 'log'; line: string }
  | { type: 'result'; result: Awaited<ReturnType<typeof runFinetuneJob>> }
  | { type: 'error'; message: string; stack?: string };

const port = parentPort;
if (!port) throw new Error('finetune worker must run in a worker thread');

port.once('message', (job: FinetuneJob) => {
  try {
    // On Linux this sets the niceness of this thread only: inference threads keep their priority.
    setPriority(Math.max(0, Math.min(19, job.niceness)));
  } catch {
    // Not permitted or not supported: run at normal priority.
  }
  let lastProgress = 0;
  runFinetuneJob(
    job,
    (p) => {
      const now = Date.now();
      if (now - lastProgress < 1000 && p.batch !== p.batches) return;
      lastProgress = now;
      port.postMessage({ type: 'progress', ...p } satisfies FinetuneWorkerMessage);
    },
    (line) => port.postMessage({ type: 'log', line } satisfies FinetuneWorkerMessage),
  ).then(
    (result) => port.postMessage({ type: 'result', result } satisfies FinetuneWorkerMessage),
    (err: unknown) => port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err), ...(err instanceof Error && err.stack ? { stack: err.stack } : {}) } satisfies FinetuneWorkerMessage),
  );
});
