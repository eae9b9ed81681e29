// The training optimizer: tfjs's Adam, with its update done in one SIMD loop per variable on wasm.
//
// tfjs's AdamOptimizer spends a dozen elementwise ops per variable and step (about 8 ms a step for
// pw-vgg-48 on wasm). createAdam() returns an AdamOptimizer whose applyGradients runs the same
// arithmetic in heap-kernels.ts' adamStepHeap when the SIMD kernels are available; moments,
// weight names, getWeights/setWeights (checkpoints) and the learning rate are tfjs's own, so a
// checkpoint written by either path resumes in the other.
import * as tf from '@tensorflow/tfjs-core';
import { adamStepHeap, copyHeap, heapKernelsAvailable, ownsMemory } from './heap-kernels.js';

interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  incrementIterations(): void;
}

type VariableGradients = Parameters<tf.AdamOptimizer['applyGradients']>[0];

class FusedAdam extends tf.AdamOptimizer {
  override applyGradients(variableGradients: VariableGradients): void {
    if (!heapKernelsAvailable()) {
      super.applyGradients(variableGradients);
      return;
    }
    const self = this as unknown as AdamInternals;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const accBeta1 = self.accBeta1.dataSync()[0]!;
    const accBeta2 = self.accBeta2.dataSync()[0]!;
    const constants = {
      learningRate: self.learningRate,
      beta1: self.beta1,
      beta2: self.beta2,
      epsilon: self.epsilon,
      c1: 1 / (1 - accBeta1),
      c2: 1 / (1 - accBeta2),
    };
    tf.tidy(() => {
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name]!;
        const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : (variableGradients as Record<string, tf.Tensor | undefined>)[name];
        if (gradient == null) return;
        // Same names and creation as tfjs's Adam, so getWeights/setWeights stay compatible.
        self.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        self.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        const m = self.accumulatedFirstMoment[i].variable;
        const v = self.accumulatedSecondMoment[i].variable;
        // The moments are updated where they lie: give each its own copy first if it shares memory.
        for (const moment of [m, v]) if (!ownsMemory(moment)) moment.assign(copyHeap(moment));
        value.assign(adamStepHeap(value, gradient, m, v, constants));
      });
      self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
    });
    self.incrementIterations();
  }
}

/** Adam with tfjs's defaults (β1 0.9, β2 0.999, ε from the backend), fused on wasm. */
export function createAdam(learningRate: number): tf.AdamOptimizer {
  return new FusedAdam(learningRate, 0.9, 0.999);
}
