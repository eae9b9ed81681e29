// A trained network as model.onnx: the folded chain that the classify stage runs (batch norm folded
// into each convolution, activations fused, dropout gone: folded-model.ts) written as an ONNX graph
// of Conv, Relu/LeakyRelu, MaxPool, Flatten, Gemm and Softmax, opset 13, with a free batch size.
//
// The graph reads the same prepared tensor as the tfjs model, [batch, size, size, channels] (NHWC: 1, or 3 for R, G, B), and
// gives probabilities [batch, classes] (a Softmax is added when the network ends in logits).
// Inside, it runs NCHW as ONNX Runtime prefers: a Transpose after the input and one before Flatten
// keep the dense weights in their tfjs order.
import { createHash } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { PlankwatchError } from '../errors.js';
import { foldSteps, type FoldedStep } from './folded-model.js';
import { folderIO } from './model-files.js';
import { encodeModel, FLOAT, INT64, type OnnxNode, type OnnxTensor } from './onnx-proto.js';

export const ONNX_FILE = 'model.onnx';
/** Names of the exported graph's input and output. */
export const ONNX_INPUT = 'image';
export const ONNX_OUTPUT = 'probabilities';
const OPSET = 13;
const IR_VERSION = 7;

export interface OnnxExportInfo {
  /** Recorded in the model's metadata (e.g. "vgg80/avg-v1-v2"). */
  id?: string;
}

/**
 * The bytes of model.onnx for a tfjs layers model (not disposed here). Throws PW_E_ONNX_EXPORT
 * when the model is not a chain the classify stage can fold.
 */
export function exportOnnx(model: tfl.LayersModel, info: OnnxExportInfo = {}): Uint8Array {
  const shape = model.inputs[0]?.shape;
  if (model.inputs.length !== 1 || !shape || shape.length !== 4 || shape[1] == null || shape[2] == null || shape[3] == null) {
    throw exportError(`${info.id ?? model.name}: the input must be one [batch, height, width, channels] image, not ${JSON.stringify(shape)}`);
  }
  const folded = foldSteps(model);
  if (!folded) {
    throw exportError(`${info.id ?? model.name}: only plain chains of Conv2D, BatchNormalization, ReLU/LeakyReLU, MaxPooling2D, Flatten, Dropout and Dense layers can be exported`);
  }
  try {
    const graph = new GraphBuilder();
    let x = graph.node('Transpose', [ONNX_INPUT], [{ name: 'perm', ints: [0, 3, 1, 2] }]);
    let dims: number[] = [shape[3], shape[1], shape[2]];
    let softmaxLast = false;
    for (const step of folded.steps) {
      [x, dims] = graph.step(step, x, dims);
      softmaxLast = step.kind === 'softmax';
    }
    if (dims.length !== 1) throw exportError(`${info.id ?? model.name}: the network must end in a dense layer (its output is ${JSON.stringify(dims)} per image)`);
    if (!softmaxLast) x = graph.node('Softmax', [x], [{ name: 'axis', i: 1 }]);
    graph.rename(x, ONNX_OUTPUT);
    const bytes = encodeModel({
      irVersion: IR_VERSION,
      opset: OPSET,
      producerName: 'plankwatch',
      producerVersion: '1',
      graphName: (info.id ?? model.name).replace(/[^A-Za-z0-9_.-]/g, '_'),
      docString: 'Exported from a TensorFlow.js layers model with batch normalisation folded into the convolutions.',
      nodes: graph.nodes,
      initializers: graph.initializers,
      inputs: [{ name: ONNX_INPUT, elemType: FLOAT, shape: ['batch', shape[1], shape[2], shape[3]] }],
      outputs: [{ name: ONNX_OUTPUT, elemType: FLOAT, shape: ['batch', dims[0]!] }],
      metadata: { ...(info.id ? { member: info.id } : {}), layout: `input NHWC [batch, size, size, ${shape[3]}], output probabilities` },
    });
    return bytes;
  } finally {
    folded.dispose();
  }
}

/**
 * Read a member folder's model.json and weights, and write model.onnx beside them (atomically).
 * Call before writeMeta, so that meta.json's checksums cover it. Returns its SHA-256.
 */
export async function writeOnnxForFolder(dir: string, id?: string): Promise<string> {
  const model = await tfl.loadLayersModel(folderIO(dir));
  try {
    return await writeOnnx(dir, model, id);
  } finally {
    model.dispose();
  }
}

/**
 * Where a new member version is written (train, average, fine-tuning): model.onnx beside the
 * model.json just saved, read back from the folder so that it is exactly what the daemon loads.
 * Call before writeMeta. A network that does not export is logged, not fatal: its version then
 * runs on TensorFlow.js. Returns whether model.onnx was written.
 */
export async function writeOnnxBeside(dir: string, id: string, log: (line: string) => void = () => {}): Promise<boolean> {
  try {
    await writeOnnxForFolder(dir, id);
    return true;
  } catch (err) {
    if (!(err instanceof PlankwatchError && err.code === 'PW_E_ONNX_EXPORT')) throw err;
    log(`${err.message} ${id} keeps model.json only; it runs on TensorFlow.js (classify.backend "wasm").`);
    return false;
  }
}

/** Write model.onnx for `model` into `dir` (atomically); returns its SHA-256. */
export async function writeOnnx(dir: string, model: tfl.LayersModel, id?: string): Promise<string> {
  const bytes = exportOnnx(model, { id });
  const file = path.join(dir, ONNX_FILE);
  await writeFile(`${file}.tmp`, bytes);
  await rename(`${file}.tmp`, file);
  return createHash('sha256').update(bytes).digest('hex');
}

/** Builds the node and initializer lists, naming every value. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private count = 0;

  node(opType: string, inputs: string[], attributes: OnnxNode['attributes'] = []): string {
    const name = `${opType.toLowerCase()}_${++this.count}`;
    this.nodes.push({ opType, inputs, outputs: [name], name, attributes });
    return name;
  }

  tensor(prefix: string, dims: number[], data: Float32Array): string {
    const name = `${prefix}_${++this.count}`;
    this.initializers.push({ name, dims, type: FLOAT, data });
    return name;
  }

  ints(prefix: string, data: number[]): string {
    const name = `${prefix}_${++this.count}`;
    this.initializers.push({ name, dims: [data.length], type: INT64, data });
    return name;
  }

  /** Rename the output of the node that produced `value`. */
  rename(value: string, name: string): void {
    for (const n of this.nodes) n.outputs = n.outputs.map((o) => (o === value ? name : o));
  }

  /** One folded step: the value it produces and its shape per image ([c, h, w] or [features]). */
  step(step: FoldedStep, x: string, dims: number[]): [string, number[]] {
    switch (step.kind) {
      case 'conv': {
        const [kh, kw, ci, co] = step.filter.shape;
        if (dims.length !== 3 || dims[0] !== ci) throw exportError(`a convolution over ${ci} channels follows a value of shape ${JSON.stringify(dims)}`);
        const [padH, outH] = padding(dims[1]!, kh, step.strides[0], step.dilations[0], step.pad);
        const [padW, outW] = padding(dims[2]!, kw, step.strides[1], step.dilations[1], step.pad);
        const w = this.tensor('w', [co, ci, kh, kw], transposed(step.filter, [3, 2, 0, 1]));
        const inputs = [x, w];
        if (step.bias) inputs.push(this.tensor('b', [co], step.bias.dataSync() as Float32Array));
        const y = this.node('Conv', inputs, [
          { name: 'kernel_shape', ints: [kh, kw] },
          { name: 'strides', ints: [...step.strides] },
          { name: 'dilations', ints: [...step.dilations] },
          { name: 'pads', ints: [padH[0], padW[0], padH[1], padW[1]] },
        ]);
        return [this.activation(y, step.activation, step.alpha), [co, outH, outW]];
      }
      case 'dense': {
        const [inputs, units] = step.kernel.shape;
        if (dims.length !== 1 || dims[0] !== inputs) throw exportError(`a dense layer over ${inputs} inputs follows a value of shape ${JSON.stringify(dims)}`);
        const b = this.tensor('w', [inputs, units], Float32Array.from(step.kernel.dataSync() as Float32Array));
        const gemmInputs = [x, b];
        if (step.bias) gemmInputs.push(this.tensor('b', [units], step.bias.dataSync() as Float32Array));
        const y = this.node('Gemm', gemmInputs);
        return [this.activation(y, step.activation, step.alpha), [units]];
      }
      case 'maxPool': {
        if (dims.length !== 3) throw exportError(`a pooling layer follows a value of shape ${JSON.stringify(dims)}`);
        const [padH, outH] = padding(dims[1]!, step.poolSize[0], step.strides[0], 1, step.pad);
        const [padW, outW] = padding(dims[2]!, step.poolSize[1], step.strides[1], 1, step.pad);
        const y = this.node('MaxPool', [x], [
          { name: 'kernel_shape', ints: [...step.poolSize] },
          { name: 'strides', ints: [...step.strides] },
          { name: 'pads', ints: [padH[0], padW[0], padH[1], padW[1]] },
        ]);
        return [y, [dims[0]!, outH, outW]];
      }
      case 'flatten': {
        if (dims.length !== 3) return [x, dims];
        // tfjs flattens [h, w, c]: back to channels last first, so the dense weights keep their order.
        const nhwc = this.node('Transpose', [x], [{ name: 'perm', ints: [0, 2, 3, 1] }]);
        return [this.node('Flatten', [nhwc], [{ name: 'axis', i: 1 }]), [dims[0]! * dims[1]! * dims[2]!]];
      }
      case 'activation':
        return [this.activation(x, step.activation, step.alpha), dims];
      case 'softmax':
        if (dims.length !== 1) throw exportError(`a softmax over a value of shape ${JSON.stringify(dims)}`);
        return [this.node('Softmax', [x], [{ name: 'axis', i: 1 }]), dims];
    }
  }

  private activation(x: string, activation: string, alpha: number): string {
    if (activation === 'relu') return this.node('Relu', [x]);
    if (activation === 'leakyrelu') return this.node('LeakyRelu', [x], [{ name: 'alpha', f: alpha }]);
    return x;
  }
}

/** TensorFlow's padding along one axis: [before, after] and the output length. 'same' puts the odd pixel after. */
function padding(size: number, kernel: number, stride: number, dilation: number, pad: 'same' | 'valid'): [[number, number], number] {
  const span = (kernel - 1) * dilation + 1;
  if (pad === 'valid') return [[0, 0], Math.ceil((size - span + 1) / stride)];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + span - size, 0);
  return [[Math.floor(total / 2), total - Math.floor(total / 2)], out];
}

function transposed(t: tf.Tensor, perm: number[]): Float32Array {
  const out = tf.tidy(() => tf.transpose(t, perm));
  try {
    return Float32Array.from(out.dataSync() as Float32Array);
  } finally {
    out.dispose();
  }
}

function exportError(detail: string): PlankwatchError {
  return new PlankwatchError('PW_E_ONNX_EXPORT', `Cannot export to ONNX: ${detail}.`);
}
