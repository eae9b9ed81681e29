// The tensor side of classification, used in a worker thread (wasm, cpu) or in the main thread
// (native TensorFlow). Holds the loaded models of one or more ensemble generations, so that a new
// ensemble can be loaded while batches still run on the old one.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { inferenceModel, type InferenceModel } from './folded-model.js';
import { folderIO } from './model-files.js';
import { expandBatch, type TtaTransform } from './tta.js';

export interface MemberSpec {
  /** "name/version", for messages. */
  id: string;
  dir: string;
  inputSize: number;
  /** The prepared input this member reads (inputKey: its size and preparation). */
  inputKey: string;
  numClasses: number;
  /** The views averaged for this member (['identity']: the image as it is). */
  tta: TtaTransform[];
  /** The prepared value of the background, for the corners a diagonal turn brings in. */
  fill: number;
}

/** What one engine loads: the members of one ensemble generation. */
export interface GenerationSpec {
  gen: number;
  members: MemberSpec[];
}

/** A batch of count images: one row-major Float32Array of count * size * size per prepared input (inputKey). */
export interface BatchInput {
  gen: number;
  count: number;
  inputs: { key: string; size: number; pixels: Float32Array }[];
}

export interface BatchOutput {
  /** Per member, count * numClasses probabilities (TTA already averaged). */
  probs: Float32Array[];
  /** Time spent in this engine for the batch. */
  computeMs: number;
}

export interface EngineMemory {
  numTensors: number;
  numBytes: number;
}

interface LoadedMember {
  spec: MemberSpec;
  /** Batch norm folded and activations fused where the model allows (inferenceModel). */
  model: InferenceModel;
  /** False when the model outputs logits: softmax is then applied here. */
  softmaxOutput: boolean;
}

interface Generation {
  members: LoadedMember[];
}

export class InferenceEngine {
  private readonly generations = new Map<number, Generation>();

  /** Load every member of a generation, check its shapes and warm it up with a zero batch. */
  async load(spec: GenerationSpec): Promise<void> {
    if (this.generations.has(spec.gen)) return;
    const members: LoadedMember[] = [];
    try {
      for (const m of spec.members) {
        const model = await tfl.loadLayersModel(folderIO(m.dir));
        const softmaxOutput = endsInSoftmax(model);
        try {
          checkShapes(model, m);
        } catch (err) {
          model.dispose();
          throw err;
        }
        members.push({ spec: m, model: inferenceModel(model), softmaxOutput });
      }
    } catch (err) {
      for (const m of members) m.model.dispose();
      throw err;
    }
    this.generations.set(spec.gen, { members });
    const inputs = new Map(spec.members.map((m) => [m.inputKey, { key: m.inputKey, size: m.inputSize, pixels: new Float32Array(m.inputSize * m.inputSize) }]));
    this.run({ gen: spec.gen, count: 1, inputs: [...inputs.values()] });
  }

  /** Classify one batch synchronously; every intermediate tensor is disposed. */
  run(batch: BatchInput): BatchOutput {
    const start = performance.now();
    const generation = this.generations.get(batch.gen);
    if (!generation) throw new Error(`ensemble generation ${batch.gen} is not loaded`);
    const inputs = new Map<string, Float32Array>();
    for (const input of batch.inputs) {
      if (input.pixels.length !== batch.count * input.size * input.size) {
        throw new Error(`input ${input.key}: ${input.pixels.length} floats for ${batch.count} images`);
      }
      inputs.set(input.key, input.pixels);
    }
    // Members of one input with the same views share one expanded batch.
    const expanded = new Map<string, Float32Array>();
    const probs = generation.members.map((member) => {
      const { inputSize: size, numClasses, tta, fill } = member.spec;
      const input = inputs.get(member.spec.inputKey);
      if (!input) throw new Error(`batch lacks the input ${member.spec.inputKey} (${size}x${size}) that ${member.spec.id} needs`);
      const key = `${member.spec.inputKey}:${tta.join(',')}`;
      let pixels = expanded.get(key);
      if (!pixels) {
        pixels = expandBatch(input, size, tta, fill);
        expanded.set(key, pixels);
      }
      const views = tta.length;
      const out = tf.tidy(() => {
        const x = tf.tensor4d(pixels, [views * batch.count, size, size, 1]);
        let y: tf.Tensor = member.model.predict(x);
        if (!member.softmaxOutput) y = tf.softmax(y);
        return views > 1 ? tf.mean(tf.reshape(y, [views, batch.count, numClasses]), 0) : y;
      });
      try {
        // A copy: the result travels to the main thread as a transferable buffer.
        return Float32Array.from(out.dataSync() as Float32Array);
      } finally {
        out.dispose();
      }
    });
    return { probs, computeMs: performance.now() - start };
  }

  unload(gen: number): void {
    const generation = this.generations.get(gen);
    if (!generation) return;
    this.generations.delete(gen);
    for (const m of generation.members) m.model.dispose();
  }

  dispose(): void {
    for (const gen of [...this.generations.keys()]) this.unload(gen);
  }

  memory(): EngineMemory {
    const { numTensors, numBytes } = tf.memory();
    return { numTensors, numBytes };
  }
}

function endsInSoftmax(model: tfl.LayersModel): boolean {
  const last = model.layers[model.layers.length - 1];
  const config = last?.getConfig() as { activation?: unknown } | undefined;
  return config?.activation === 'softmax' || last?.getClassName() === 'Softmax';
}

function checkShapes(model: tfl.LayersModel, m: MemberSpec): void {
  const input = model.inputs[0]?.shape;
  const output = model.outputs[0]?.shape;
  if (model.inputs.length !== 1 || !input || input[1] !== m.inputSize || input[2] !== m.inputSize || input[3] !== 1) {
    throw new Error(`${m.id}: model input shape ${JSON.stringify(input)} does not match meta.json input ${m.inputSize}x${m.inputSize}x1`);
  }
  if (model.outputs.length !== 1 || !output || output.length !== 2 || output[1] !== m.numClasses) {
    throw new Error(`${m.id}: model output shape ${JSON.stringify(output)} does not match the ${m.numClasses} classes of meta.json`);
  }
}
