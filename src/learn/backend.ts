// The training backend: @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node when installed (native
// libtensorflow, all gradients, many threads), else the wasm backend with the gradient kernels
// from wasm-gradients.ts. tfjs-node is an optional package: it is imported by name at run time,
// so the project builds and runs without it.
import * as tf from '@tensorflow/tfjs-core';
import { registerTrainingGradients } from './gradients.js';
import { registerWasmGradients } from './wasm-gradients.js';

export type TrainingBackend = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendChoice {
  /** tfjs backend name now active: "tensorflow", "wasm" or "cpu". */
  name: string;
  /** The package that provides it. */
  packageName: string;
}

const NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

/** Try to load tfjs-node(-gpu); returns the package name that loaded, or null. */
export async function loadNativeBackend(): Promise<string | null> {
  for (const name of NODE_PACKAGES) {
    try {
      await import(/* @vite-ignore */ name);
      if (tf.findBackend('tensorflow')) return name;
    } catch {
      // Not installed (the usual case on the vessel's embedded machines): fall through.
    }
  }
  return null;
}

/** Select and initialise the backend for training and evaluation. */
export async function initBackend(prefer: TrainingBackend = 'auto'): Promise<BackendChoice> {
  registerTrainingGradients();
  if (prefer === 'auto' || prefer === 'tensorflow') {
    const pkg = await loadNativeBackend();
    if (pkg && (await tf.setBackend('tensorflow'))) {
      await tf.ready();
      return { name: 'tensorflow', packageName: pkg };
    }
    if (prefer === 'tensorflow') throw new Error('Backend "tensorflow" requested but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed.');
  }
  if (prefer === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    await tf.ready();
    return { name: 'cpu', packageName: '@tensorflow/tfjs-backend-cpu' };
  }
  await import('@tensorflow/tfjs-backend-wasm');
  registerWasmGradients();
  if (!(await tf.setBackend('wasm'))) throw new Error('The wasm backend could not be initialised.');
  await tf.ready();
  return { name: 'wasm', packageName: '@tensorflow/tfjs-backend-wasm' };
}
