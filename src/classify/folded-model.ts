// Inference-only form of a loaded model: batch normalisation folded into the convolution before
// it, and the activation after a convolution or dense layer fused into it, so that each block
// runs as one fused kernel instead of four (convolution, batch norm, activation, and the copies
// between them). Dropout is dropped. Only plain chains of standard layers are folded; anything
// else returns null and runs through the model's own predict, so folding can never change which
// models load, only how fast they run.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { convForwardHeap, directConv } from '../simd/conv.js';
import { winogradConv, winogradConvApplies } from '../simd/winograd-conv.js';
import { directPool2x2, maxPool2x2Heap } from '../simd/pool.js';

type Activation = 'linear' | 'relu' | 'leakyrelu';

export type FoldedStep = Step;

type Step =
  | { kind: 'conv'; filter: tf.Tensor4D; bias: tf.Tensor1D | null; strides: [number, number]; pad: 'same' | 'valid'; dilations: [number, number]; activation: Activation; alpha: number }
  | { kind: 'dense'; kernel: tf.Tensor2D; bias: tf.Tensor1D | null; activation: Activation; alpha: number }
  | { kind: 'maxPool'; poolSize: [number, number]; strides: [number, number]; pad: 'same' | 'valid' }
  | { kind: 'flatten' }
  | { kind: 'activation'; activation: Activation; alpha: number }
  | { kind: 'softmax' };

/** What inference runs: a folded model, or a layers model that could not be folded. */
export interface InferenceModel {
  /** Same output as the model's predict (probabilities or logits), to within float rounding. */
  predict(x: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

interface LayerConfig {
  activation?: string;
  strides?: number[];
  padding?: string;
  dilationRate?: number | number[];
  dataFormat?: string;
  poolSize?: number[];
  alpha?: number;
  epsilon?: number;
  axis?: number | number[];
  center?: boolean;
  scale?: boolean;
  useBias?: boolean;
  maxValue?: number | null;
  negativeSlope?: number;
  threshold?: number;
}

/** A folded chain: its steps, and the tensors they own (dispose() releases them). */
export interface FoldedSteps {
  steps: readonly FoldedStep[];
  dispose(): void;
}

/**
 * The folded steps of a chain model (batch norm folded, activations fused, dropout gone), or null
 * when it has a layer or wiring this cannot fold. The steps own copies of the weights: the model
 * can be disposed. Inference runs them here (foldModel); the ONNX exporter writes them out.
 */
export function foldSteps(model: tfl.LayersModel): FoldedSteps | null {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return null;
  const owned: tf.Tensor[] = [];
  const steps: Step[] = [];
  try {
    let previous: tfl.layers.Layer | null = null;
    for (const layer of model.layers) {
      const cls = layer.getClassName();
      if (cls === 'InputLayer') {
        previous = layer;
        continue;
      }
      if (!fedBy(layer, previous)) return disposeAll(owned);
      previous = layer;
      const config = layer.getConfig() as LayerConfig;
      if (config.dataFormat && config.dataFormat !== 'channelsLast') return disposeAll(owned);
      const next = toSteps(cls, config, layer, steps[steps.length - 1], owned);
      if (next === null) return disposeAll(owned);
      steps.push(...next);
    }
  } catch {
    return disposeAll(owned);
  }
  return { steps, dispose: () => disposeAll(owned) };
}

/** Fold a chain model for inference, or null when it has a layer or wiring this cannot fold. */
export function foldModel(model: tfl.LayersModel): InferenceModel | null {
  const folded = foldSteps(model);
  if (!folded) return null;
  const steps = folded.steps as Step[];
  return {
    predict: (x) => tf.tidy(() => run(steps, x)),
    dispose: () => folded.dispose(),
  };
}

/**
 * The form inference runs: the folded model when the model folds (the layers model is then
 * disposed, its weights live on in the folded one), else the layers model itself. Takes
 * ownership of `model`.
 */
export function inferenceModel(model: tfl.LayersModel): InferenceModel {
  const folded = foldModel(model);
  if (folded) {
    model.dispose();
    return folded;
  }
  return { predict: (x) => model.predict(x) as tf.Tensor2D, dispose: () => model.dispose() };
}

/** True when the layer's single input is the previous layer's output. */
function fedBy(layer: tfl.layers.Layer, previous: tfl.layers.Layer | null): boolean {
  const input = layer.input;
  if (Array.isArray(input)) return false;
  // A sequential model lists its layers without the input layer.
  if (previous === null) return input.sourceLayer.getClassName() === 'InputLayer';
  return input.sourceLayer === previous;
}

/**
 * The steps for one layer: none when it was folded into the step before it or does nothing at
 * inference, or null when it cannot be folded.
 */
function toSteps(cls: string, config: LayerConfig, layer: tfl.layers.Layer, last: Step | undefined, owned: tf.Tensor[]): Step[] | null {
  const weights = layer.getWeights();
  const keep = <T extends tf.Tensor>(t: T): T => {
    const kept = tf.keep(t.clone());
    owned.push(kept);
    return kept as T;
  };
  switch (cls) {
    case 'Conv2D': {
      const activation = fusable(config.activation ?? 'linear');
      if (!activation) return null;
      const dilation = typeof config.dilationRate === 'number' ? [config.dilationRate, config.dilationRate] : (config.dilationRate ?? [1, 1]);
      return [{
        kind: 'conv',
        filter: keep(weights[0] as tf.Tensor4D),
        bias: config.useBias && weights[1] ? keep(weights[1] as tf.Tensor1D) : null,
        strides: pair(config.strides),
        pad: config.padding === 'same' ? 'same' : 'valid',
        dilations: pair(dilation),
        activation,
        alpha: 0,
      }];
    }
    case 'Dense': {
      const activation = config.activation === 'softmax' ? 'linear' : fusable(config.activation ?? 'linear');
      if (!activation || (layer.outputShape as number[]).length !== 2) return null;
      const dense: Step = { kind: 'dense', kernel: keep(weights[0] as tf.Tensor2D), bias: config.useBias && weights[1] ? keep(weights[1] as tf.Tensor1D) : null, activation, alpha: 0 };
      return config.activation === 'softmax' ? [dense, { kind: 'softmax' }] : [dense];
    }
    case 'BatchNormalization': {
      const axis = Array.isArray(config.axis) ? config.axis : [config.axis ?? -1];
      const rank = (layer.outputShape as number[]).length;
      if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== rank - 1)) return null;
      if (!last || (last.kind !== 'conv' && last.kind !== 'dense') || last.activation !== 'linear') return null;
      foldBatchNorm(last, weights, config, owned);
      return [];
    }
    case 'LeakyReLU':
    case 'ReLU':
    case 'Activation': {
      let activation: Activation | null;
      let alpha = 0;
      if (cls === 'LeakyReLU') {
        activation = 'leakyrelu';
        alpha = config.alpha ?? 0.3;
      } else if (cls === 'ReLU') {
        if (config.maxValue != null || (config.negativeSlope ?? 0) !== 0 || (config.threshold ?? 0) !== 0) return null;
        activation = 'relu';
      } else if (config.activation === 'softmax') {
        return [{ kind: 'softmax' }];
      } else {
        activation = fusable(config.activation ?? 'linear');
      }
      if (!activation) return null;
      if (activation === 'linear') return [];
      if (last && (last.kind === 'conv' || last.kind === 'dense') && last.activation === 'linear') {
        last.activation = activation;
        last.alpha = alpha;
        return [];
      }
      return [{ kind: 'activation', activation, alpha }];
    }
    case 'MaxPooling2D':
      return [{ kind: 'maxPool', poolSize: pair(config.poolSize), strides: pair(config.strides ?? config.poolSize), pad: config.padding === 'same' ? 'same' : 'valid' }];
    case 'Flatten':
      return [{ kind: 'flatten' }];
    case 'Dropout':
      return [];
    default:
      return null;
  }
}

/**
 * scale = gamma / sqrt(variance + epsilon): weights *= scale, bias = (bias - mean) * scale + beta.
 * Computed in double precision here, then rounded once, so that the folded weights are the same
 * bits on every backend (and model.onnx the same bytes wherever it is exported).
 */
function foldBatchNorm(step: Extract<Step, { kind: 'conv' | 'dense' }>, weights: tf.Tensor[], config: LayerConfig, owned: tf.Tensor[]): void {
  let i = 0;
  const values = (t: tf.Tensor | undefined) => (t ? (t.dataSync() as Float32Array) : null);
  const gamma = config.scale !== false ? values(weights[i++]) : null;
  const beta = config.center !== false ? values(weights[i++]) : null;
  const mean = values(weights[i++])!;
  const variance = values(weights[i++])!;
  const epsilon = config.epsilon ?? 1e-3;
  const [weightsOld, biasOld] = step.kind === 'conv' ? [step.filter as tf.Tensor, step.bias] : [step.kernel as tf.Tensor, step.bias];
  const channels = mean.length;
  const scale = new Float64Array(channels);
  const bias = new Float32Array(channels);
  const oldBias = values(biasOld ?? undefined);
  for (let c = 0; c < channels; c++) {
    scale[c] = (gamma ? gamma[c]! : 1) / Math.sqrt(variance[c]! + epsilon);
    bias[c] = ((oldBias ? oldBias[c]! : 0) - mean[c]!) * scale[c]! + (beta ? beta[c]! : 0);
  }
  // The output channel is the last axis of a conv filter [h, w, in, out] and of a dense kernel [in, out].
  const w = values(weightsOld)!;
  const folded = new Float32Array(w.length);
  for (let k = 0; k < w.length; k++) folded[k] = w[k]! * scale[k % channels]!;
  for (const t of [weightsOld, biasOld]) {
    if (!t) continue;
    owned.splice(owned.indexOf(t), 1);
    t.dispose();
  }
  const foldedTensor = tf.keep(tf.tensor(folded, weightsOld.shape));
  const biasTensor = tf.keep(tf.tensor1d(bias));
  owned.push(foldedTensor, biasTensor);
  if (step.kind === 'conv') step.filter = foldedTensor as tf.Tensor4D;
  else step.kernel = foldedTensor as tf.Tensor2D;
  step.bias = biasTensor;
}

function run(steps: Step[], input: tf.Tensor4D): tf.Tensor2D {
  let x: tf.Tensor = input;
  for (const step of steps) {
    switch (step.kind) {
      case 'conv': {
        // Winograd's 3x3 convolution or the direct SIMD loop where they apply (wasm with SIMD,
        // stride 1, ...), bias and activation in the same pass; else the backend's fused convolution.
        const slope = step.activation === 'linear' ? 1 : step.activation === 'relu' ? 0 : step.alpha;
        const direct = slope >= 0 && slope <= 1 ? directConv(x, step.filter, step.strides, step.pad, step.dilations) : null;
        if (direct && winogradConvApplies(x.shape, step.filter.shape, direct)) {
          x = winogradConv(x as tf.Tensor4D, step.filter, step.bias, slope);
          break;
        }
        if (direct) {
          x = convForwardHeap(x as tf.Tensor4D, step.filter, direct, step.bias, slope);
          break;
        }
        x = tf.fused.conv2d({
          x: x as tf.Tensor4D,
          filter: step.filter,
          strides: step.strides,
          pad: step.pad,
          dilations: step.dilations,
          bias: step.bias ?? undefined,
          activation: step.activation,
          leakyreluAlpha: step.alpha,
        });
        break;
      }
      case 'dense':
        x = tf.fused.matMul({ a: x as tf.Tensor2D, b: step.kernel, bias: step.bias ?? undefined, activation: step.activation, leakyreluAlpha: step.alpha });
        break;
      case 'maxPool':
        x = directPool2x2(x, step.poolSize, step.strides, step.pad) ? maxPool2x2Heap(x as tf.Tensor4D) : tf.maxPool(x as tf.Tensor4D, step.poolSize, step.strides, step.pad);
        break;
      case 'flatten':
        x = tf.reshape(x, [x.shape[0]!, -1]);
        break;
      case 'activation':
        x = step.activation === 'relu' ? tf.relu(x) : tf.leakyRelu(x, step.alpha);
        break;
      case 'softmax':
        x = tf.softmax(x);
        break;
    }
  }
  return x as tf.Tensor2D;
}

function fusable(activation: string): Activation | null {
  return activation === 'linear' || activation === 'relu' ? activation : null;
}

function pair(value: number[] | undefined): [number, number] {
  if (!value || value.length === 0) return [1, 1];
  return [value[0]!, value[1] ?? value[0]!];
}

function disposeAll(tensors: tf.Tensor[]): null {
  for (const t of tensors.splice(0)) t.dispose();
  return null;
}
