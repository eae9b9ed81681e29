// Inference backends, one `type` each: ONNX Runtime (each member's model.onnx; CPU, or CUDA and
// TensorRT where installed), then native TensorFlow (GPU, then CPU) when its package is installed,
// else WebAssembly with SIMD, else the pure-JavaScript CPU kernels.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PlankwatchError } from '../errors.js';
import { DEFAULT_ONNX_SETTINGS, ONNX_PACKAGE, startOnnxRuntime, type OnnxRuntimeInfo, type OnnxSettings } from './onnx-runtime.js';

export type BackendName = 'onnx' | 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';
export type BackendRequest = 'auto' | BackendName;

export const BACKEND_NAMES: readonly BackendName[] = ['onnx', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

/** What ONNX Runtime falls back to when it cannot load: the portable TensorFlow.js backends. */
const ONNX_FALLBACKS: readonly BackendName[] = ['wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** Name of the backend registered in tfjs-core ('tensorflow', 'wasm' or 'cpu'). */
  tfBackend: string;
  /** Whether the wasm binary in use has SIMD (wasm only). */
  simd?: boolean;
  /** ONNX Runtime's version, execution provider and threads, and why other providers were passed over (onnx only). */
  onnx?: OnnxRuntimeInfo;
  /**
   * Native TensorFlow runs its own thread pool and is loaded once per process (its addon cannot be
   * loaded again in a second worker thread), so it runs on the main thread, not one per core.
   */
  native: boolean;
}

const PACKAGES: Record<BackendName, string> = {
  onnx: ONNX_PACKAGE,
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
 * backend just that one, except 'onnx', which the portable TensorFlow.js backends back up (it is
 * tried even when its package seems missing, so that the log says why it did not start). A named
 * backend that is not installed is PW_E_BACKEND.
 */
export function backendCandidates(requested: BackendRequest, installed: (name: BackendName) => boolean = isInstalled): BackendName[] {
  if (requested === 'auto') {
    const found = BACKEND_NAMES.filter((name) => installed(name));
    if (found.length === 0) throw new PlankwatchError('PW_E_BACKEND', 'No inference backend package is installed (onnxruntime-node or a TensorFlow.js backend): run `npm ci`.');
    return found;
  }
  if (requested === 'onnx') return ['onnx', ...ONNX_FALLBACKS.filter((name) => installed(name))];
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
 * listing why each candidate failed (a lone 'onnx' candidate: its own PW_E_ONNX_RUNTIME).
 */
export async function initBackend(candidates: BackendName[], onnx: OnnxSettings = DEFAULT_ONNX_SETTINGS): Promise<BackendInfo> {
  const failures: string[] = [];
  for (const name of candidates) {
    try {
      return await activate(name, onnx);
    } catch (err) {
      if (candidates.length === 1 && err instanceof PlankwatchError) throw err;
      failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new PlankwatchError('PW_E_BACKEND', `No backend could be started (${failures.join('; ')}).`);
}

async function activate(name: BackendName, onnx: OnnxSettings): Promise<BackendInfo> {
  // Package names held in a variable: the native packages are optional and absent at build time.
  const pkg: string = PACKAGES[name];
  switch (name) {
    case 'onnx': {
      const info = await startOnnxRuntime(onnx);
      // TensorFlow.js only reads model.json here, for a member version that has no model.onnx yet.
      if (!tf.engine().backendName) {
        await import('@tensorflow/tfjs-backend-cpu');
        await setBackend('cpu');
        quietCpuBanner();
      }
      return { name, tfBackend: tf.engine().backendName, native: false, onnx: info };
    }
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
      quietCpuBanner();
      return { name, tfBackend: 'cpu', native: false };
    }
  }
}

/** The cpu backend prints a banner recommending tfjs-node on first use; the choice is logged already. */
function quietCpuBanner(): void {
  if (tf.getBackend() === 'cpu') (tf.backend() as { firstUse?: boolean }).firstUse = false;
}

async function setBackend(tfName: string): Promise<void> {
  if (!(await tf.setBackend(tfName))) throw new PlankwatchError('PW_E_BACKEND', `tf.setBackend('${tfName}') failed`);
  await tf.ready();
}
