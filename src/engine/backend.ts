// The training backend: @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node when installed (native
// libtensorflow, all gradients, many threads), else the wasm backend with the gradient kernels
// from wasm-gradients.ts. tfjs-node is an optional package: it is imported by name at run time,
// so the project builds and runs without it.
import * as tf from '@tensorflow/tfjs-core';
import type { Config } from '../config/config.js';
import { PlankwatchError } from '../errors.js';
import { registerTrainingGradients } from './gradients.js';
import { registerWasmGradients } from './wasm-gradients.js';

/**
 * finetune.backend's names (those of classify.backend, without onnx), and "tensorflow": the
 * training commands' name for whichever native package is installed.
 */
export type TrainingBackend = Config['finetune']['backend'] | 'tensorflow';

export interface BackendChoice {
  /** tfjs backend name now active: "tensorflow", "wasm" or "cpu". */
  name: string;
  /** The package that provides it. */
  packageName: string;
}

const NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

/** Try to load tfjs-node(-gpu), or only the packages given; returns the package name that loaded, or null. */
export async function loadNativeBackend(packages: readonly string[] = NODE_PACKAGES): Promise<string | null> {
  for (const name of packages) {
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
  if (prefer === 'auto' || prefer === 'tensorflow' || prefer === 'tfjs-node-gpu' || prefer === 'tfjs-node') {
    const packages = prefer === 'auto' || prefer === 'tensorflow' ? NODE_PACKAGES : [`@tensorflow/${prefer}`];
    const pkg = await loadNativeBackend(packages);
    if (pkg && (await tf.setBackend('tensorflow'))) {
      await tf.ready();
      return { name: 'tensorflow', packageName: pkg };
    }
    if (prefer !== 'auto') {
      throw new PlankwatchError(
        'PW_E_BACKEND',
        `Training backend "${prefer}" was requested (finetune.backend, or --backend) but ${packages.join(' or ')} is not installed: install it, or set finetune.backend to "auto".`,
      );
    }
  }
  if (prefer === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    await tf.ready();
    return { name: 'cpu', packageName: '@tensorflow/tfjs-backend-cpu' };
  }
  await import('@tensorflow/tfjs-backend-wasm');
  registerWasmGradients();
  if (!(await tf.setBackend('wasm'))) throw new PlankwatchError('PW_E_BACKEND', 'The wasm training backend could not be initialised.');
  await tf.ready();
  return { name: 'wasm', packageName: '@tensorflow/tfjs-backend-wasm' };
}
