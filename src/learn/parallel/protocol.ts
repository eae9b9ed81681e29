// Messages between the parallel trainer (main thread) and its gradient workers. Every array is a
// typed array; the large ones travel as transferable buffers.

export interface WorkerModel {
  /** tfjs-layers topology (model.json's modelTopology). */
  modelTopology: object;
  weightSpecs: { name: string; shape: number[]; dtype: string }[];
  weightData: ArrayBuffer;
}

export type TrainWorkerRequest =
  | {
      id: number;
      op: 'init';
      backend: 'wasm' | 'cpu';
      model: WorkerModel;
      /**
       * Shared memory for every weight of the model (model.weights order, flattened). The main
       * thread writes it before a step or prediction and not again until every worker has
       * answered; each worker sets its replica from it first.
       */
      weights: SharedArrayBuffer;
    }
  | {
      id: number;
      op: 'step';
      /** count images of size² · channels prepared floats. */
      x: Float32Array;
      labels: Int32Array;
      /** Loss weight of each image (class weights). */
      lossWeights: Float32Array;
      /**
       * With a teacher (distillation): each image's target row, count × numClasses, the label mixed
       * with the teacher's vote. Absent: the one-hot label.
       */
      targets?: Float32Array;
      count: number;
      /** The loss is Σ(weighted cross-entropy) / scale: the global batch size, so that shard gradients add up. */
      scale: number;
      numClasses: number;
      /** Seed for Math.random during the step (dropout masks). */
      seed: number;
    }
  | { id: number; op: 'predict'; pixels: Uint8Array; count: number; batchSize: number }
  | { id: number; op: 'weights' }
  | { id: number; op: 'close' };

export interface StepResult {
  /** Σ(weighted cross-entropy over the shard) / scale. */
  loss: number;
  /** Images of the shard whose arg-max logit was the label. */
  hits: number;
  /** Gradients of the trainable weights (model.trainableWeights order), flattened. */
  grads: Float32Array;
  /** The non-trainable weights (batch-norm moving statistics) after the step, flattened. */
  state: Float32Array;
}

export type TrainWorkerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export interface WorkerInfo {
  backend: string;
  weights: number;
  trainable: number;
}
