// Inference backends, one `type` each: native TensorFlow (GPU, then CPU) when its package is
// installed, else WebAssembly with SIMD, else the pure-JavaScript CPU kernels.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PlankwatchError } from '../errors.js';

export type BackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';
export type BackendRequest = 'auto' | BackendName;

export const BACKEND_NAMES: readonly BackendName[] = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** Name of the backend registered in tfjs-core ('tensorflow', 'wasm' or 'cpu'). */
  tfBackend: string;
  /** Whether the wasm binary in use has SIMD (wasm only). */
  simd?: boolean;
  /**
   * Native TensorFlow runs its own thread pool and is loaded once per process (its addon cannot be
   * loaded again in a second worker thread), so it runs on the main thread, not one per core.
   */
  native: boolean;
}

const PACKAGES: Record<BackendName, string> = {
  'tfjs-node-gpu': '@tensorflow/tfjs-node-gpu',
  'tfjs-node': '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

const require = createRequire(import.meta.url);

/** Whether a backend's package can be found from here (does not load it). */
export function isInstalled(name: BackendName): boolean {
  try {
    require.resolve(PACKAGES[name]);
    return true;
  } catch {
    return false;
  }
}

export function isNative(name: BackendName): boolean {
  return name === 'tfjs-node-gpu' || name === 'tfjs-node';
}

/**
 * Backends to try, best first: for 'auto' every installed one in preference order; for a named
 * backend just that one. A named backend that is not installed is PW_E_BACKEND.
 */
export function backendCandidates(requested: BackendRequest, installed: (name: BackendName) => boolean = isInstalled): BackendName[] {
  if (requested === 'auto') {
    const found = BACKEND_NAMES.filter((name) => installed(name));
    if (found.length === 0) throw new PlankwatchError('PW_E_BACKEND', 'No TensorFlow.js backend package is installed.');
    return found;
  }
  if (!BACKEND_NAMES.includes(requested)) {
    throw new PlankwatchError('PW_E_BACKEND', `Unknown backend "${String(requested)}"; use auto, ${BACKEND_NAMES.join(', ')}.`);
  }
  if (!installed(requested)) {
    throw new PlankwatchError('PW_E_BACKEND', `Backend "${requested}" was requested but the package ${PACKAGES[requested]} is not installed.`);
  }
  return [requested];
}

/**
 * Load and activate the first candidate that starts, in the calling thread. Throws PW_E_BACKEND
 * listing why each candidate failed.
 */
export async function initBackend(candidates: BackendName[]): Promise<BackendInfo> {
  const failures: string[] = [];
  for (const name of candidates) {
    try {
      return await activate(name);
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new PlankwatchError('PW_E_BACKEND', `No backend could be started (${failures.join('; ')}).`);
}

async function activate(name: BackendName): Promise<BackendInfo> {
  // Package names held in a variable: the native packages are optional and absent at build time.
  const pkg: string = PACKAGES[name];
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      await import(pkg);
      await setBackend('tensorflow');
      return { name, tfBackend: 'tensorflow', native: true };
    }
    case 'wasm': {
      const wasm = (await import(pkg)) as typeof import('@tensorflow/tfjs-backend-wasm');
      // In Node the binaries are read from the file system: the prefix is a folder path that must
      // end with a separator (it is concatenated with the file name). Threads are not used in Node.
      // setWasmPaths may only be called before the backend is first initialised in this thread.
      if (!tf.findBackend('wasm')) wasm.setWasmPaths(path.dirname(require.resolve(pkg)) + path.sep);
      await setBackend('wasm');
      const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
      return { name, tfBackend: 'wasm', simd, native: false };
    }
    case 'cpu': {
      await import(pkg);
      await setBackend('cpu');
      // The cpu backend prints a banner recommending tfjs-node on first use; the choice is logged already.
      (tf.backend() as { firstUse?: boolean }).firstUse = false;
      return { name, tfBackend: 'cpu', native: false };
    }
  }
}

async function setBackend(tfName: string): Promise<void> {
  if (!(await tf.setBackend(tfName))) throw new Error(`tf.setBackend('${tfName}') failed`);
  await tf.ready();
}
