// The model side of classification, used in a worker thread (ONNX Runtime, wasm, cpu) or in the
// main thread (native TensorFlow). Holds the loaded members of one or more ensemble generations,
// so that a new ensemble can be loaded while batches still run on the old one. Each member runs
// through ONNX Runtime (its model.onnx) or through TensorFlow.js (its model.json, folded); the
// views, their average and the checks around them are the same for both.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { PlankwatchError } from '../errors.js';
import { inferenceModel, type InferenceModel } from './folded-model.js';
import type { OnnxIo } from './meta.js';
import { folderIO } from './model-files.js';
import { exportOnnx, ONNX_FILE } from './onnx-export.js';
import { memberIo, OnnxSession } from './onnx-runtime.js';
import { expandBatch, type TtaTransform } from './tta.js';

/** Which runtime an engine runs its members on. */
export type EngineKind = 'onnx' | 'tfjs';

export interface MemberSpec {
  /** "name/version", for messages. */
  id: string;
  dir: string;
  inputSize: number;
  /** Input channels (absent: 1, gray; 3: R, G, B interleaved). */
  channels?: 1 | 3;
  /** The prepared input this member reads (inputKey: its size, preparation and channels). */
  inputKey: string;
  numClasses: number;
  /** The views averaged for this member (['identity']: the image as it is). */
  tta: TtaTransform[];
  /** The prepared value of the background, for the corners a diagonal turn brings in. */
  fill: number;
  /**
   * SHA-256 of its model.onnx as meta.json records it (null: the version has none). The ONNX
   * engine checks the bytes it loads against it; without one it converts model.json at load.
   */
  onnxSha256?: string | null;
  /** How model.onnx reads and writes when it was trained elsewhere (meta.json "onnx"); such a version has no model.json. */
  onnxIo?: OnnxIo | null;
}

/** What one engine loads: the members of one ensemble generation. */
export interface GenerationSpec {
  gen: number;
  members: MemberSpec[];
}

/** A batch of count images: one row-major Float32Array of count * size * size (* channels) per prepared input (inputKey). */
export interface BatchInput {
  gen: number;
  count: number;
  inputs: { key: string; size: number; channels?: 1 | 3; pixels: Float32Array }[];
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

/** What loading a generation did besides the plain load, for the log. */
export interface LoadReport {
  /** Members that had no model.onnx: converted from model.json in memory (ONNX engine only). */
  converted: string[];
}

/** One loaded member: prepared images in, probabilities out. */
interface MemberModel {
  /** Probabilities of `images` prepared images (images * size * size floats): images * numClasses. */
  predict(pixels: Float32Array, images: number): Promise<Float32Array> | Float32Array;
  dispose(): Promise<void> | void;
  /** Bytes of weights it holds (ONNX members; TensorFlow.js counts its own). */
  bytes: number;
}

interface LoadedMember {
  spec: MemberSpec;
  model: MemberModel;
}

interface Generation {
  members: LoadedMember[];
}

export class InferenceEngine {
  readonly kind: EngineKind;
  private readonly generations = new Map<number, Generation>();

  constructor(kind: EngineKind = 'tfjs') {
    this.kind = kind;
  }

  /** Load every member of a generation, check its shapes and warm it up with a zero batch. */
  async load(spec: GenerationSpec): Promise<LoadReport> {
    const report: LoadReport = { converted: [] };
    if (this.generations.has(spec.gen)) return report;
    const members: LoadedMember[] = [];
    try {
      for (const m of spec.members) {
        const model = this.kind === 'onnx' ? await loadOnnxMember(m, report) : await loadTfjsMember(m);
        members.push({ spec: m, model });
      }
    } catch (err) {
      for (const m of members) await m.model.dispose();
      throw err;
    }
    this.generations.set(spec.gen, { members });
    const inputs = new Map(spec.members.map((m) => [m.inputKey, { key: m.inputKey, size: m.inputSize, channels: m.channels ?? 1, pixels: new Float32Array(m.inputSize * m.inputSize * (m.channels ?? 1)) }]));
    await this.run({ gen: spec.gen, count: 1, inputs: [...inputs.values()] });
    return report;
  }

  /** Classify one batch: per member, its views' probabilities averaged. */
  async run(batch: BatchInput): Promise<BatchOutput> {
    const start = performance.now();
    const generation = this.generations.get(batch.gen);
    if (!generation) throw new PlankwatchError('PW_E_INTERNAL', `ensemble generation ${batch.gen} is not loaded`);
    const inputs = new Map<string, Float32Array>();
    for (const input of batch.inputs) {
      if (input.pixels.length !== batch.count * input.size * input.size * (input.channels ?? 1)) {
        throw new PlankwatchError('PW_E_INTERNAL', `input ${input.key}: ${input.pixels.length} floats for ${batch.count} images`);
      }
      inputs.set(input.key, input.pixels);
    }
    // Members of one input with the same views share one expanded batch.
    const expanded = new Map<string, Float32Array>();
    const probs: Float32Array[] = [];
    for (const member of generation.members) {
      const { inputSize: size, numClasses, tta, fill, channels = 1 } = member.spec;
      const input = inputs.get(member.spec.inputKey);
      if (!input) throw new PlankwatchError('PW_E_INTERNAL', `batch lacks the input ${member.spec.inputKey} (${size}x${size}) that ${member.spec.id} needs`);
      const key = `${member.spec.inputKey}:${tta.join(',')}`;
      let pixels = expanded.get(key);
      if (!pixels) {
        pixels = expandBatch(input, size, tta, fill, channels);
        expanded.set(key, pixels);
      }
      const rows = await member.model.predict(pixels, tta.length * batch.count);
      // A copy (or the mean of the views): the result travels to the main thread as a transferable buffer.
      probs.push(meanOfViews(rows, tta.length, batch.count * numClasses));
    }
    return { probs, computeMs: performance.now() - start };
  }

  async unload(gen: number): Promise<void> {
    const generation = this.generations.get(gen);
    if (!generation) return;
    this.generations.delete(gen);
    for (const m of generation.members) await m.model.dispose();
  }

  async dispose(): Promise<void> {
    for (const gen of [...this.generations.keys()]) await this.unload(gen);
  }

  /** Generations loaded here (their numbers). */
  loaded(): number[] {
    return [...this.generations.keys()];
  }

  memory(): EngineMemory {
    if (this.kind === 'onnx') {
      let numBytes = 0;
      for (const g of this.generations.values()) for (const m of g.members) numBytes += m.model.bytes;
      return { numTensors: 0, numBytes };
    }
    const { numTensors, numBytes } = tf.memory();
    return { numTensors, numBytes };
  }
}

/** rows: views blocks of `length` floats, one after another; their mean, in a new array. */
function meanOfViews(rows: Float32Array, views: number, length: number): Float32Array {
  if (rows.length !== views * length) throw new PlankwatchError('PW_E_INTERNAL', `the model gave ${rows.length} probabilities for ${views} x ${length}`);
  if (views === 1) return Float32Array.from(rows);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    let sum = 0;
    for (let v = 0; v < views; v++) sum += rows[v * length + i]!;
    out[i] = sum / views;
  }
  return out;
}

async function loadTfjsMember(m: MemberSpec): Promise<MemberModel> {
  if (m.onnxIo) {
    throw new PlankwatchError('PW_E_MODEL_LOAD', `Member ${m.id} was imported as model.onnx alone (no model.json): it runs on ONNX Runtime only; set classify.backend to "auto" or "onnx".`);
  }
  const layers = await tfl.loadLayersModel(folderIO(m.dir));
  const softmaxOutput = endsInSoftmax(layers);
  try {
    checkShapes(layers, m);
  } catch (err) {
    layers.dispose();
    throw err;
  }
  // Batch norm folded and activations fused where the model allows (inferenceModel).
  const model: InferenceModel = inferenceModel(layers);
  const { inputSize: size, channels = 1 } = m;
  return {
    bytes: 0,
    predict(pixels, images) {
      const out = tf.tidy(() => {
        const y: tf.Tensor = model.predict(tf.tensor4d(pixels, [images, size, size, channels]));
        return softmaxOutput ? y : tf.softmax(y);
      });
      try {
        return Float32Array.from(out.dataSync() as Float32Array);
      } finally {
        out.dispose();
      }
    },
    dispose: () => model.dispose(),
  };
}

/**
 * The member's model.onnx, checked against the checksum meta.json records (the file could change
 * between the loader's check and this read); a version without one is converted from its
 * model.json here, in memory.
 */
async function loadOnnxMember(m: MemberSpec, report: LoadReport): Promise<MemberModel> {
  let bytes: Uint8Array;
  if (m.onnxSha256) {
    const file = path.join(m.dir, ONNX_FILE);
    bytes = await readFile(file);
    const sum = createHash('sha256').update(bytes).digest('hex');
    if (sum !== m.onnxSha256) {
      throw new PlankwatchError('PW_E_MODEL_LOAD', `Member ${m.id}: checksum mismatch for ${file} (file changed or truncated since meta.json was written)`);
    }
  } else if (m.onnxIo) {
    throw new PlankwatchError('PW_E_MODEL_LOAD', `Member ${m.id}: meta.json lists no checksum for its model.onnx`);
  } else {
    const layers = await tfl.loadLayersModel(folderIO(m.dir));
    try {
      checkShapes(layers, m);
      bytes = exportOnnx(layers, { id: m.id });
    } finally {
      layers.dispose();
    }
    report.converted.push(m.id);
  }
  const session = await OnnxSession.create(bytes, m.id, m.inputSize, m.numClasses, memberIo({ onnx: m.onnxIo ?? undefined, input: { channels: m.channels ?? 1 } }));
  return {
    bytes: bytes.length,
    predict: (pixels, images) => session.run(pixels, images),
    dispose: () => session.release(),
  };
}

function endsInSoftmax(model: tfl.LayersModel): boolean {
  const last = model.layers[model.layers.length - 1];
  const config = last?.getConfig() as { activation?: unknown } | undefined;
  return config?.activation === 'softmax' || last?.getClassName() === 'Softmax';
}

function checkShapes(model: tfl.LayersModel, m: MemberSpec): void {
  const input = model.inputs[0]?.shape;
  const output = model.outputs[0]?.shape;
  const channels = m.channels ?? 1;
  if (model.inputs.length !== 1 || !input || input[1] !== m.inputSize || input[2] !== m.inputSize || input[3] !== channels) {
    throw new PlankwatchError('PW_E_MODEL_LOAD', `${m.id}: model input shape ${JSON.stringify(input)} does not match meta.json input ${m.inputSize}x${m.inputSize}x${channels}`);
  }
  if (model.outputs.length !== 1 || !output || output.length !== 2 || output[1] !== m.numClasses) {
    throw new PlankwatchError('PW_E_MODEL_LOAD', `${m.id}: model output shape ${JSON.stringify(output)} does not match the ${m.numClasses} classes of meta.json`);
  }
}
