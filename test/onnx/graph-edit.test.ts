// Editing a model.onnx for head fine-tuning (src/classify/onnx-graph.ts), on the forms a final
// classifier takes in graphs from other exporters: Gemm (PyTorch; here with transB, alpha and
// beta), MatMul and Add (Keras through tf2onnx), MatMul alone. For each, through the real ONNX
// Runtime: the features output is the classifier's input, the classifier found gives the model's
// output from it, and the graph with a replaced classifier, grown by a class, gives exactly the
// new classifier's probabilities.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { FEATURES_OUTPUT, findClassifier, replaceClassifier, withFeaturesOutput } from '../../src/classify/onnx-graph.js';
import { encodeModel, FLOAT, type OnnxNode, type OnnxTensor } from '../../src/classify/onnx-proto.js';
import { maxAbsDiff } from './helpers.js';

const N = 5;
const IN = 4;
const F = 3;
const K = 2;
const seq = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
const W1 = seq(IN * F, (i) => Math.sin(i + 1));
const W2 = seq(F * K, (i) => Math.cos(2 * i + 1));
const B2 = Float32Array.from([0.3, -0.2]);
const X = seq(N * IN, (i) => ((i * 7) % 11) / 5 - 1);

type Form = 'gemm' | 'matmul-add' | 'matmul';

/** input [N, 4] -> MatMul -> Relu (the features, [N, 3]) -> the classifier (form) -> Softmax. */
function model(form: Form): Uint8Array {
  const nodes: OnnxNode[] = [
    { opType: 'MatMul', inputs: ['x', 'w1'], outputs: ['h0'], name: 'body' },
    { opType: 'Relu', inputs: ['h0'], outputs: ['h'], name: 'relu' },
  ];
  const initializers: OnnxTensor[] = [{ name: 'w1', dims: [IN, F], type: FLOAT, data: W1 }];
  if (form === 'gemm') {
    // Weights stored [K, F] (transB) and scaled by alpha 2 and beta 0.5, as some exporters do.
    const wt = new Float32Array(K * F);
    for (let i = 0; i < F; i++) for (let j = 0; j < K; j++) wt[j * F + i] = W2[i * K + j]! / 2;
    initializers.push({ name: 'w2', dims: [K, F], type: FLOAT, data: wt }, { name: 'b2', dims: [K], type: FLOAT, data: B2.map((b) => b * 2) });
    nodes.push({ opType: 'Gemm', inputs: ['h', 'w2', 'b2'], outputs: ['logits'], name: 'head', attributes: [{ name: 'transB', i: 1 }, { name: 'alpha', f: 2 }, { name: 'beta', f: 0.5 }] });
  } else {
    initializers.push({ name: 'w2', dims: [F, K], type: FLOAT, data: W2 });
    if (form === 'matmul-add') {
      initializers.push({ name: 'b2', dims: [K], type: FLOAT, data: B2 });
      nodes.push({ opType: 'MatMul', inputs: ['h', 'w2'], outputs: ['mm'], name: 'head' }, { opType: 'Add', inputs: ['mm', 'b2'], outputs: ['logits'], name: 'bias' });
    } else {
      nodes.push({ opType: 'MatMul', inputs: ['h', 'w2'], outputs: ['logits'], name: 'head' });
    }
  }
  nodes.push({ opType: 'Softmax', inputs: ['logits'], outputs: ['probs'], name: 'softmax', attributes: [{ name: 'axis', i: 1 }] });
  return encodeModel({
    irVersion: 7, opset: 13, producerName: 'test', producerVersion: '1', graphName: form, nodes, initializers,
    inputs: [{ name: 'x', elemType: FLOAT, shape: ['batch', IN] }],
    outputs: [{ name: 'probs', elemType: FLOAT, shape: ['batch', K] }],
  });
}

async function run(bytes: Uint8Array): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const out = await session.run({ x: new ort.Tensor('float32', X, [N, IN]) });
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}

function softmaxOf(features: Float32Array, w: Float32Array, b: Float32Array, k: number): Float32Array {
  const out = new Float32Array(N * k);
  for (let r = 0; r < N; r++) {
    const z = Array.from(b);
    for (let i = 0; i < F; i++) for (let j = 0; j < k; j++) z[j]! += features[r * F + i]! * w[i * k + j]!;
    const max = Math.max(...z);
    const e = z.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, v) => a + v, 0);
    e.forEach((v, j) => (out[r * k + j] = v / sum));
  }
  return out;
}

const io = { output: 'probs', outputs: 'probabilities' as const };

describe('model.onnx classifier edits', () => {
  it.each(['gemm', 'matmul-add', 'matmul'] as Form[])('%s: features output, the classifier found, and a grown replacement', async (form) => {
    const bytes = model(form);
    const c = findClassifier(bytes, io, form);
    expect({ form: c.form, features: c.features, inputs: c.inputs, units: c.units }).toEqual({ form, features: 'h', inputs: F, units: K });
    expect(maxAbsDiff(c.weights, W2)).toBeLessThan(1e-6);
    expect(maxAbsDiff(c.bias, form === 'matmul' ? [0, 0] : B2)).toBeLessThan(1e-6);

    const both = await run(withFeaturesOutput(bytes, io, form));
    const features = both[FEATURES_OUTPUT]!;
    expect(features).toHaveLength(N * F);
    expect(maxAbsDiff(both.probs!, softmaxOf(features, c.weights, c.bias, K))).toBeLessThan(1e-6);

    // A third class, other weights: the edited graph gives the new classifier's probabilities.
    const w = seq(F * (K + 1), (i) => Math.sin(3 * i) / 2);
    const b = Float32Array.from([0.1, 0.2, -0.4]);
    const edited = replaceClassifier(bytes, io, form, w, b);
    const out = await run(edited);
    expect(out.probs).toHaveLength(N * (K + 1));
    expect(maxAbsDiff(out.probs!, softmaxOf(features, w, b, K + 1))).toBeLessThan(1e-6);
    const again = findClassifier(edited, io, form);
    expect([again.inputs, again.units]).toEqual([F, K + 1]);
    expect(maxAbsDiff(again.weights, w)).toBeLessThan(1e-6);
    const session = await ort.InferenceSession.create(edited);
    const meta = session.outputMetadata[0]!;
    expect(meta.isTensor && meta.shape[1]).toBe(K + 1);
    await session.release();
  });

  it('refuses a graph whose output is not made by a dense classifier, naming what makes it', () => {
    const bytes = encodeModel({
      irVersion: 7, opset: 13, producerName: 'test', producerVersion: '1', graphName: 'relu',
      nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['logits'], name: 'r' }, { opType: 'Softmax', inputs: ['logits'], outputs: ['probs'], name: 's', attributes: [{ name: 'axis', i: 1 }] }],
      initializers: [],
      inputs: [{ name: 'x', elemType: FLOAT, shape: ['batch', IN] }],
      outputs: [{ name: 'probs', elemType: FLOAT, shape: ['batch', IN] }],
    });
    expect(() => findClassifier(bytes, io, 'm/v1')).toThrow(/PW_E_FINETUNE_FAILED.*Member m\/v1: cannot fine-tune the head of its model\.onnx: its output is made by Relu/);
  });
});
