// What a model's layers do differently while they train, for speed (the saved model is unchanged):
// batch norm with its closed-form gradient (fused with its leaky ReLU on wasm), and convolutions
// through the plain Conv2D kernel instead of tfjs-layers' fused op. The fused op's gradient always
// computes both the input and the filter gradient, and copies what it saves; the plain kernel's
// gradient is computed only where needed (not for the image itself, the first layer's input) and
// keeps references. useFastTraining(model) installs both and returns the function that undoes it.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { useFastBatchNorm } from './fast-batchnorm.js';

interface ConvLayerLike {
  rank: number;
  kernel: { read(): tf.Tensor };
  bias: unknown;
  useBias: boolean;
  activation: { getClassName(): string } | null;
  strides: number[];
  padding: 'valid' | 'same';
  dataFormat: string;
  dilationRate: number[];
  call: (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];
}

/** Channels-last 2D convolutions without bias, activation or dilation call tf.conv2d while training. */
export function usePlainConvolutions(model: tfl.LayersModel): () => void {
  const restored: (() => void)[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Conv2D') continue;
    const conv = layer as unknown as ConvLayerLike;
    const plain =
      conv.rank === 2 &&
      !conv.useBias &&
      conv.bias == null &&
      (conv.activation == null || conv.activation.getClassName() === 'linear') &&
      conv.dataFormat === 'channelsLast' &&
      conv.dilationRate.every((d) => d === 1);
    if (!plain) continue;
    const original = conv.call;
    conv.call = function (inputs, kwargs) {
      if (!kwargs.training) return original.call(this, inputs, kwargs);
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
      return tf.conv2d(x, conv.kernel.read() as tf.Tensor4D, conv.strides as [number, number], conv.padding);
    };
    restored.push(() => {
      conv.call = original;
    });
  }
  return () => restored.forEach((r) => r());
}

export function useFastTraining(model: tfl.LayersModel): () => void {
  const undo = [useFastBatchNorm(model), usePlainConvolutions(model)];
  return () => undo.forEach((u) => u());
}
