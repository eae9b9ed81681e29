// Reading and editing an existing model.onnx, for head fine-tuning: find the classifier (the last
// Gemm, or MatMul and Add, before the output and its Softmax), expose its input (the penultimate
// features) as a second graph output, and write a new model.onnx whose classifier has other
// weights, grown for new classes. The protobuf is edited field by field: everything not touched
// (nodes, other weights, metadata, opsets, fields this file does not know) is written back as it
// was read. Field numbers from onnx/onnx.proto.
import { PlankwatchError } from '../errors.js';
import type { OnnxIo } from './meta.js';
import { FLOAT, LEN } from './onnx-proto.js';
import { decode, encode, first, int, ints, msg, str, strings, varintBytes, type Field } from './protobuf-fields.js';

/** The name of the features output that withFeaturesOutput adds. */
export const FEATURES_OUTPUT = 'features';

/** The classifier found in a graph, as logits = features · weights + bias (weights [inputs, units], row-major). */
export interface OnnxClassifier {
  /** The value the classifier reads: the penultimate features, [batch, inputs]. */
  features: string;
  inputs: number;
  units: number;
  weights: Float32Array;
  bias: Float32Array;
  /** How the classifier is written in the graph. */
  form: 'gemm' | 'matmul-add' | 'matmul';
}

function graphError(id: string, detail: string): PlankwatchError {
  return new PlankwatchError(
    'PW_E_FINETUNE_FAILED',
    `Member ${id}: cannot fine-tune the head of its model.onnx: ${detail}. Its last layer must be a Gemm, or a MatMul and an Add, with constant weights (before an optional Softmax); fine-tune it where it was trained and import the result again with \`plankwatch models import\`.`,
  );
}

// ---- ONNX messages --------------------------------------------------------------------------

/** ModelProto.graph, NodeProto, TensorProto, AttributeProto field numbers used here. */
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_OP = 4;
const NODE_ATTRIBUTE = 5;
const TENSOR_DIMS = 1;
const TENSOR_TYPE = 2;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_NAME = 8;
const TENSOR_RAW = 9;
const TENSOR_LOCATION = 14;

interface Node {
  index: number;
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  fields: Field[];
}

interface Graph {
  model: Field[];
  graph: Field[];
  nodes: Node[];
  /** Initializer name -> its index in `graph`. */
  initializers: Map<string, number>;
}

function readGraph(bytes: Uint8Array, id: string): Graph {
  let model: Field[];
  let graph: Field[];
  try {
    model = decode(bytes);
    const g = first(model, MODEL_GRAPH);
    if (!g) throw new Error('it holds no graph');
    graph = decode(g.value as Uint8Array);
  } catch (err) {
    throw graphError(id, `it cannot be read as ONNX (${(err as Error).message})`);
  }
  const nodes: Node[] = [];
  const initializers = new Map<string, number>();
  graph.forEach((f, index) => {
    if (f.field === GRAPH_NODE && f.wire === LEN) {
      const fields = decode(f.value as Uint8Array);
      nodes.push({ index, op: strings(fields, NODE_OP)[0] ?? '', name: strings(fields, NODE_NAME)[0] ?? '', inputs: strings(fields, NODE_INPUT), outputs: strings(fields, NODE_OUTPUT), fields });
    } else if (f.field === GRAPH_INITIALIZER && f.wire === LEN) {
      const name = strings(decode(f.value as Uint8Array), TENSOR_NAME)[0];
      if (name !== undefined) initializers.set(name, index);
    }
  });
  return { model, graph, nodes, initializers };
}

function writeGraph(g: Graph): Uint8Array {
  const graphBytes = encode(g.graph);
  return encode(g.model.map((f) => (f.field === MODEL_GRAPH ? { ...f, value: graphBytes } : f)));
}

function attribute(node: Node, name: string): { f?: number; i?: number } | undefined {
  for (const a of node.fields.filter((f) => f.field === NODE_ATTRIBUTE)) {
    const fields = decode(a.value as Uint8Array);
    if (strings(fields, 1)[0] !== name) continue;
    const f = first(fields, 2);
    const i = first(fields, 3);
    return {
      ...(f ? { f: new DataView((f.value as Uint8Array).buffer, (f.value as Uint8Array).byteOffset, 4).getFloat32(0, true) } : {}),
      ...(i ? { i: Number(BigInt.asIntN(64, i.value as bigint)) } : {}),
    };
  }
  return undefined;
}

interface Tensor {
  dims: number[];
  data: Float32Array;
}

function readTensor(g: Graph, name: string, id: string): Tensor {
  const index = g.initializers.get(name);
  if (index === undefined) throw graphError(id, `the classifier's weights "${name}" are not a constant of the graph`);
  const fields = decode(g.graph[index]!.value as Uint8Array);
  const dims = ints(fields, TENSOR_DIMS);
  const type = Number(first(fields, TENSOR_TYPE)?.value ?? 0n);
  if (type !== FLOAT) throw graphError(id, `the classifier's weights "${name}" are not 32-bit floats (ONNX type ${type})`);
  if (Number(first(fields, TENSOR_LOCATION)?.value ?? 0n) === 1) throw graphError(id, `the classifier's weights "${name}" are kept in an external file`);
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = first(fields, TENSOR_RAW);
  let data: Float32Array;
  if (raw) {
    const b = raw.value as Uint8Array;
    const view = new DataView(b.buffer, b.byteOffset, b.length);
    data = new Float32Array(b.length / 4);
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
  } else {
    const values: number[] = [];
    for (const f of fields.filter((x) => x.field === TENSOR_FLOAT_DATA)) {
      const b = f.value as Uint8Array;
      const view = new DataView(b.buffer, b.byteOffset, b.length);
      for (let i = 0; i + 4 <= b.length; i += 4) values.push(view.getFloat32(i, true));
    }
    data = Float32Array.from(values);
  }
  if (data.length !== count) throw graphError(id, `the classifier's weights "${name}" hold ${data.length} values for dims ${JSON.stringify(dims)}`);
  return { dims, data };
}

/** An initializer's field: the float tensor with this name, dims and data (raw_data, little-endian). */
function tensorField(name: string, dims: number[], data: Float32Array): Field {
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  const dimField: Field = { field: TENSOR_DIMS, wire: LEN, value: packed(dims) };
  return msg(GRAPH_INITIALIZER, [dimField, int(TENSOR_TYPE, FLOAT), str(TENSOR_NAME, name), { field: TENSOR_RAW, wire: LEN, value: raw }]);
}

function packed(values: number[]): Uint8Array {
  const out: number[] = [];
  for (const v of values) varintBytes(BigInt(v), out);
  return Uint8Array.from(out);
}

// ---- the classifier -------------------------------------------------------------------------

interface Located {
  node: Node;
  form: OnnxClassifier['form'];
  features: string;
  weight: string;
  bias: string | null;
  /** Gemm only: the Add node for matmul-add. */
  add: Node | null;
  transB: boolean;
  alpha: number;
  beta: number;
  /** The values from the classifier's output to the model's, whose shapes carry the class count. */
  chain: string[];
}

function locate(g: Graph, io: Pick<OnnxIo, 'output' | 'outputs'>, id: string): Located {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const chain: string[] = [io.output];
  let value = io.output;
  const step = (): Node | undefined => {
    let n = producer.get(value);
    while (n && n.op === 'Identity') {
      value = n.inputs[0]!;
      chain.push(value);
      n = producer.get(value);
    }
    return n;
  };
  let node = step();
  if (node?.op === 'Softmax') {
    value = node.inputs[0]!;
    chain.push(value);
    node = step();
  } else if (io.outputs === 'probabilities') {
    throw graphError(id, `its output "${io.output}" gives probabilities but is not made by a Softmax (it is made by ${node ? node.op : 'no node'})`);
  }
  if (!node) throw graphError(id, `no layer makes its output "${io.output}"`);
  const used = (name: string) => g.nodes.filter((n) => n.inputs.includes(name)).length;
  const isConst = (name: string | undefined) => name !== undefined && g.initializers.has(name);
  if (node.op === 'Gemm') {
    if ((attribute(node, 'transA')?.i ?? 0) !== 0) throw graphError(id, 'its last Gemm transposes its input (transA)');
    const [features, weight, bias] = node.inputs;
    if (!isConst(weight) || (bias !== undefined && bias !== '' && !isConst(bias))) throw graphError(id, 'its last Gemm does not take constant weights');
    const loc: Located = {
      node, form: 'gemm', features: features!, weight: weight!, bias: bias || null, add: null,
      transB: (attribute(node, 'transB')?.i ?? 0) !== 0, alpha: attribute(node, 'alpha')?.f ?? 1, beta: attribute(node, 'beta')?.f ?? 1, chain,
    };
    if (loc.alpha === 0 || loc.beta === 0) throw graphError(id, 'its last Gemm has alpha or beta 0');
    if (used(loc.weight) !== 1 || (loc.bias && used(loc.bias) !== 1)) throw graphError(id, 'the weights of its last Gemm are shared with other layers');
    return loc;
  }
  if (node.op === 'Add') {
    const [a, b] = node.inputs;
    const [biasName, other] = isConst(b) ? [b!, a!] : isConst(a) ? [a!, b!] : [null, null];
    const mm = other ? producer.get(other) : undefined;
    if (!biasName || !mm || mm.op !== 'MatMul' || !isConst(mm.inputs[1])) throw graphError(id, 'its output is made by an Add that is not a MatMul plus a constant bias');
    if (used(mm.inputs[1]!) !== 1 || used(biasName) !== 1 || used(mm.outputs[0]!) !== 1) throw graphError(id, 'the weights of its last MatMul and Add are shared with other layers');
    chain.push(mm.outputs[0]!);
    return { node: mm, form: 'matmul-add', features: mm.inputs[0]!, weight: mm.inputs[1]!, bias: biasName, add: node, transB: false, alpha: 1, beta: 1, chain };
  }
  if (node.op === 'MatMul' && isConst(node.inputs[1])) {
    if (used(node.inputs[1]!) !== 1) throw graphError(id, 'the weights of its last MatMul are shared with other layers');
    return { node, form: 'matmul', features: node.inputs[0]!, weight: node.inputs[1]!, bias: null, add: null, transB: false, alpha: 1, beta: 1, chain };
  }
  throw graphError(id, `its output is made by ${node.op} ("${node.name}"), not by a dense classifier (Gemm, or MatMul and Add)`);
}

/**
 * The classifier of a model.onnx: the layer that makes its logits (before the Softmax when the
 * output is probabilities), its input and its weights. Throws PW_E_FINETUNE_FAILED when the
 * model does not end that way.
 */
export function findClassifier(bytes: Uint8Array, io: Pick<OnnxIo, 'output' | 'outputs'>, id: string): OnnxClassifier {
  const g = readGraph(bytes, id);
  const loc = locate(g, io, id);
  const w = readTensor(g, loc.weight, id);
  if (w.dims.length !== 2) throw graphError(id, `the classifier's weights are ${JSON.stringify(w.dims)}, not a matrix`);
  const [inputs, units] = loc.transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
  const weights = new Float32Array(inputs * units);
  for (let i = 0; i < inputs; i++) for (let j = 0; j < units; j++) weights[i * units + j] = loc.alpha * (loc.transB ? w.data[j * inputs + i]! : w.data[i * units + j]!);
  const bias = new Float32Array(units);
  if (loc.bias) {
    const b = readTensor(g, loc.bias, id);
    if (b.data.length !== units && b.data.length !== 1) throw graphError(id, `the classifier's bias has ${b.data.length} values for ${units} classes`);
    for (let j = 0; j < units; j++) bias[j] = loc.beta * (b.data.length === 1 ? b.data[0]! : b.data[j]!);
  }
  return { features: loc.features, inputs, units, weights, bias, form: loc.form };
}

/** A ValueInfoProto for a float tensor [unknown batch, ...dims]. */
function valueInfo(name: string, dims: number[]): Field {
  const dimFields = [msg(1, []), ...dims.map((d) => msg(1, [int(1, d)]))];
  const tensorType = [int(1, FLOAT), msg(2, dimFields)];
  return msg(GRAPH_OUTPUT, [str(1, name), msg(2, [msg(1, tensorType)])]);
}

/**
 * The same model with one more output, FEATURES_OUTPUT: the classifier's input (the penultimate
 * features, [batch, inputs]), through an Identity node so that the name is fixed.
 */
export function withFeaturesOutput(bytes: Uint8Array, io: Pick<OnnxIo, 'output' | 'outputs'>, id: string): Uint8Array {
  const g = readGraph(bytes, id);
  const loc = locate(g, io, id);
  const w = readTensor(g, loc.weight, id);
  const inputs = loc.transB ? w.dims[1]! : w.dims[0]!;
  if (g.nodes.some((n) => n.outputs.includes(FEATURES_OUTPUT))) throw graphError(id, `it already has a value named "${FEATURES_OUTPUT}"`);
  const node = msg(GRAPH_NODE, [str(NODE_INPUT, loc.features), str(NODE_OUTPUT, FEATURES_OUTPUT), str(NODE_NAME, 'plankwatch_features'), str(NODE_OP, 'Identity')]);
  // Nodes first (a graph lists them in order; the new one goes after the last node).
  const lastNode = Math.max(...g.nodes.map((n) => n.index));
  g.graph.splice(lastNode + 1, 0, node);
  g.graph.push(valueInfo(FEATURES_OUTPUT, [inputs]));
  return writeGraph(g);
}

/**
 * The same model with another classifier: logits = features · weights + bias, weights
 * [inputs, units] row-major, `units` at least the present class count (new classes are new
 * columns at the end). The shapes from the classifier to the output are updated.
 */
export function replaceClassifier(bytes: Uint8Array, io: Pick<OnnxIo, 'output' | 'outputs'>, id: string, weights: Float32Array, bias: Float32Array): Uint8Array {
  const g = readGraph(bytes, id);
  const loc = locate(g, io, id);
  const w = readTensor(g, loc.weight, id);
  const inputs = loc.transB ? w.dims[1]! : w.dims[0]!;
  const units = bias.length;
  if (weights.length !== inputs * units) throw new PlankwatchError('PW_E_INTERNAL', `${id}: ${weights.length} classifier weights for ${inputs} x ${units}`);
  const oldUnits = loc.transB ? w.dims[0]! : w.dims[1]!;
  const stored = new Float32Array(inputs * units);
  for (let i = 0; i < inputs; i++) {
    for (let j = 0; j < units; j++) {
      const v = weights[i * units + j]! / loc.alpha;
      if (loc.transB) stored[j * inputs + i] = v;
      else stored[i * units + j] = v;
    }
  }
  g.graph[g.initializers.get(loc.weight)!] = tensorField(loc.weight, loc.transB ? [units, inputs] : [inputs, units], stored);
  const storedBias = bias.map((v) => v / loc.beta);
  if (loc.bias) {
    const old = readTensor(g, loc.bias, id);
    g.graph[g.initializers.get(loc.bias)!] = tensorField(loc.bias, old.dims.length === 2 ? [1, units] : [units], storedBias);
  } else {
    // No bias in the graph: one is added (Gemm's third input, or an Add after the MatMul).
    const biasName = uniqueName(g, 'plankwatch_classifier_bias');
    g.graph.push(tensorField(biasName, [units], storedBias));
    const nodeFields = loc.node.fields;
    if (loc.form === 'gemm') {
      const inputAt = nodeFields.flatMap((f, i) => (f.field === NODE_INPUT ? [i] : []));
      if (inputAt.length >= 3) nodeFields[inputAt[2]!] = str(NODE_INPUT, biasName);
      else nodeFields.splice(inputAt[inputAt.length - 1]! + 1, 0, str(NODE_INPUT, biasName));
    } else {
      const out = loc.node.outputs[0]!;
      const inner = uniqueName(g, `${out}_before_bias`);
      const renamed = nodeFields.map((f) => (f.field === NODE_OUTPUT ? str(NODE_OUTPUT, inner) : f));
      nodeFields.splice(0, nodeFields.length, ...renamed);
      const add = msg(GRAPH_NODE, [str(NODE_INPUT, inner), str(NODE_INPUT, biasName), str(NODE_OUTPUT, out), str(NODE_NAME, 'plankwatch_classifier_bias_add'), str(NODE_OP, 'Add')]);
      g.graph.splice(loc.node.index + 1, 0, add);
      g.graph[loc.node.index] = msg(GRAPH_NODE, nodeFields);
    }
    if (loc.form === 'gemm') g.graph[loc.node.index] = msg(GRAPH_NODE, nodeFields);
  }
  // Shapes that name the class count: the graph's output and any value_info along the chain.
  if (units !== oldUnits) {
    const chain = new Set(loc.chain);
    g.graph = g.graph.map((f) => ((f.field === GRAPH_OUTPUT || f.field === GRAPH_VALUE_INFO) && f.wire === LEN ? resizeValueInfo(f, chain, oldUnits, units) : f));
  }
  return writeGraph(g);
}

function uniqueName(g: Graph, base: string): string {
  const taken = new Set([...g.initializers.keys(), ...g.nodes.flatMap((n) => [...n.inputs, ...n.outputs])]);
  let name = base;
  for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
  return name;
}

/** A ValueInfoProto of the chain whose last dimension is `from`, with it set to `to`. */
function resizeValueInfo(f: Field, chain: Set<string>, from: number, to: number): Field {
  const info = decode(f.value as Uint8Array);
  if (!chain.has(strings(info, 1)[0] ?? '')) return f;
  const edit = (fields: Field[], n: number, change: (inner: Field[]) => Field[] | null): Field[] | null => {
    const at = fields.findIndex((x) => x.field === n && x.wire === LEN);
    if (at < 0) return null;
    const changed = change(decode(fields[at]!.value as Uint8Array));
    if (!changed) return null;
    const out = [...fields];
    out[at] = msg(n, changed);
    return out;
  };
  const changed = edit(info, 2, (type) =>
    edit(type, 1, (tensor) =>
      edit(tensor, 2, (shape) => {
        const dims = shape.map((d, i) => [d, i] as const).filter(([d]) => d.field === 1);
        const last = dims[dims.length - 1];
        if (!last) return null;
        const dim = decode(last[0].value as Uint8Array);
        const value = first(dim, 1);
        if (!value || Number(value.value) !== from) return null;
        const out = [...shape];
        out[last[1]] = msg(1, [int(1, to)]);
        return out;
      }),
    ),
  );
  return changed ? { ...f, value: encode(changed) } : f;
}
