// Worker thread entry: one InferenceEngine (one wasm instance) per thread, driven by WorkerRunner.
import { parentPort } from 'node:worker_threads';
import { initBackend } from './backend.js';
import { InferenceEngine } from './engine.js';
import { serializeError, type WorkerReply, type WorkerRequest } from './runner.js';

const port = parentPort;
if (!port) throw new Error('inference-worker must run in a worker thread');

const engine = new InferenceEngine();

port.on('message', (req: WorkerRequest) => {
  void handle(req).then(
    ({ result, transfer }) => port.postMessage({ id: req.id, ok: true, result } satisfies WorkerReply, transfer),
    (err: unknown) => port.postMessage({ id: req.id, ok: false, error: serializeError(err) } satisfies WorkerReply),
  );
});

async function handle(req: WorkerRequest): Promise<{ result: unknown; transfer: ArrayBuffer[] }> {
  switch (req.op) {
    case 'init':
      return { result: await initBackend(req.candidates), transfer: [] };
    case 'load':
      await engine.load(req.spec);
      return { result: null, transfer: [] };
    case 'run': {
      const output = engine.run(req.batch);
      return { result: output, transfer: output.probs.map((p) => p.buffer as ArrayBuffer) };
    }
    case 'unload':
      engine.unload(req.gen);
      return { result: null, transfer: [] };
    case 'memory':
      return { result: engine.memory(), transfer: [] };
    case 'close':
      engine.dispose();
      return { result: null, transfer: [] };
  }
}
