// A gradient worker: one wasm (or cpu) backend instance and one replica of the model. Each step
// it takes the weights and a shard of the global batch, and returns the shard's loss, hits,
// gradients and batch-norm moving statistics; it never updates the trainable weights itself (the
// main thread applies the optimizer and sends the new weights with the next step).
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { logitsModel } from '../architectures.js';
import { initBackend } from '../../engine/backend.js';
import { useFastTraining } from '../../engine/fast-training.js';
import { predictTable, withSeededMathRandom } from '../trainer.js';
import type { StepResult, TrainWorkerReply, TrainWorkerRequest, WorkerInfo } from './protocol.js';
import { readFlat, weightLayout, writeFlat, type WeightLayout } from './replica.js';

interface Replica {
  model: tfl.LayersModel;
  logits: tfl.LayersModel;
  layout: WeightLayout;
  trainableVars: tf.Variable[];
  size: number;
  /** Input channels (1 gray, 3 R, G, B). */
  channels: 1 | 3;
  /** The weights the main thread shares (see the init request). */
  weights: Float32Array;
}

let replica: Replica | null = null;

async function init(req: Extract<TrainWorkerRequest, { op: 'init' }>): Promise<WorkerInfo> {
  const backend = await initBackend(req.backend);
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: req.model.modelTopology, weightSpecs: req.model.weightSpecs as tf.io.WeightsManifestEntry[], weightData: req.model.weightData }),
  );
  // The trainer's batch-norm path (closed-form gradient), as in the single-thread trainer.
  useFastTraining(model);
  const layout = weightLayout(model);
  replica = {
    model,
    logits: logitsModel(model),
    layout,
    trainableVars: layout.trainable.map((i) => layout.variables[i]!),
    size: (model.inputs[0]!.shape[1] as number) ?? 0,
    channels: model.inputs[0]!.shape[3] === 3 ? 3 : 1,
    weights: new Float32Array(req.weights),
  };
  return { backend: backend.name, weights: layout.total, trainable: layout.trainable.length };
}

function step(req: Extract<TrainWorkerRequest, { op: 'step' }>): { result: StepResult; transfer: ArrayBuffer[] } {
  const r = need();
  writeFlat(r.layout, r.weights);
  const s = r.size;
  // Written inside the tidy but allocated outside: tidy() walks what its function returns
  // (element by element for a typed array), so it returns two numbers only.
  const grads = new Float32Array(r.trainableVars.reduce((n, v) => n + v.size, 0));
  const [loss, hits] = withSeededMathRandom(req.seed, () =>
    tf.tidy(() => {
      const x = tf.tensor4d(req.x, [req.count, s, s, r.channels]);
      const labels = tf.tensor1d(req.labels, 'int32');
      const y = req.targets ? tf.tensor2d(req.targets, [req.count, req.numClasses]) : tf.oneHot(labels, req.numClasses);
      const w = tf.tensor1d(req.lossWeights);
      let predicted: tf.Tensor | null = null;
      const { value, grads: named } = tf.variableGrads(() => {
        const logits = r.logits.apply(x, { training: true }) as tf.Tensor2D;
        predicted = tf.keep(tf.argMax(logits, 1));
        const ce = tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1));
        return tf.div(tf.sum(tf.mul(ce, w)), req.scale) as tf.Scalar;
      }, r.trainableVars);
      let o = 0;
      for (const v of r.trainableVars) {
        const g = named[v.name];
        if (g) grads.set(g.dataSync() as Float32Array, o);
        o += v.size;
      }
      const hitCount = tf.sum(tf.cast(tf.equal(predicted!, labels), 'int32')).dataSync()[0]!;
      (predicted as tf.Tensor | null)?.dispose();
      return [value.dataSync()[0]!, hitCount] as [number, number];
    }),
  );
  const state = readFlat(r.layout, r.layout.nonTrainable);
  return { result: { loss, hits, grads, state }, transfer: [grads.buffer as ArrayBuffer, state.buffer as ArrayBuffer] };
}

function predict(req: Extract<TrainWorkerRequest, { op: 'predict' }>): { result: Float32Array; transfer: ArrayBuffer[] } {
  const r = need();
  writeFlat(r.layout, r.weights);
  const probs = predictTable(r.model, { size: r.size, channels: r.channels, pixels: req.pixels, rels: new Array<string>(req.count).fill('') }, req.batchSize);
  return { result: probs, transfer: [probs.buffer as ArrayBuffer] };
}

function need(): Replica {
  if (!replica) throw new Error('training worker used before init');
  return replica;
}

const port = parentPort;
if (!port) throw new Error('learn/parallel/worker must run in a worker thread');
port.on('message', (req: TrainWorkerRequest) => {
  void (async () => {
    try {
      let result: unknown = null;
      let transfer: ArrayBuffer[] = [];
      if (req.op === 'init') result = await init(req);
      else if (req.op === 'step') ({ result, transfer } = step(req));
      else if (req.op === 'predict') ({ result, transfer } = predict(req));
      else if (req.op === 'weights') {
        const w = readFlat(need().layout);
        result = w;
        transfer = [w.buffer as ArrayBuffer];
      } else if (req.op === 'close') {
        replica?.model.dispose();
        replica = null;
      }
      port.postMessage({ id: req.id, ok: true, result } satisfies TrainWorkerReply, transfer);
    } catch (err) {
      port.postMessage({ id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies TrainWorkerReply);
    }
  })();
});
