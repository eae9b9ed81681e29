// Worker thread entry: one InferenceEngine (one wasm instance, or ONNX Runtime sessions) per
// thread, driven by WorkerRunner.
import { parentPort } from 'node:worker_threads';
import { initBackend } from './backend.js';
import { InferenceEngine } from './engine.js';
import { serializeError, type WorkerReply, type WorkerRequest } from './runner.js';
import { PlankwatchError } from '../errors.js';

const port = parentPort;
if (!port) throw new PlankwatchError('PW_E_INTERNAL', 'inference-worker must run in a worker thread');

let engine = new InferenceEngine();

port.on('message', (req: WorkerRequest) => {
  void handle(req).then(
    ({ result, transfer }) => port.postMessage({ id: req.id, ok: true, result } satisfies WorkerReply, transfer),
    (err: unknown) => port.postMessage({ id: req.id, ok: false, error: serializeError(err) } satisfies WorkerReply),
  );
});

async function handle(req: WorkerRequest): Promise<{ result: unknown; transfer: ArrayBuffer[] }> {
  switch (req.op) {
    case 'init': {
      const info = await initBackend(req.candidates, req.onnx);
      const kind = info.name === 'onnx' ? 'onnx' : 'tfjs';
      if (engine.kind !== kind) {
        await engine.dispose();
        engine = new InferenceEngine(kind);
      }
      return { result: info, transfer: [] };
    }
    case 'load':
      return { result: await engine.load(req.spec), transfer: [] };
    case 'run': {
      const output = await engine.run(req.batch);
      return { result: output, transfer: output.probs.map((p) => p.buffer as ArrayBuffer) };
    }
    case 'unload':
      await engine.unload(req.gen);
      return { result: null, transfer: [] };
    case 'memory':
      return { result: engine.memory(), transfer: [] };
    case 'close':
      await engine.dispose();
      return { result: null, transfer: [] };
  }
}
