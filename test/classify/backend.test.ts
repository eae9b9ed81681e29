import { describe, expect, it } from 'vitest';
import { backendCandidates, isInstalled, type BackendName } from '../../src/classify/backend.js';
import { Classifier } from '../../src/classify/classifier.js';
import { PlankwatchError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';

// The native packages cannot be installed on the build machines (their install downloads
// libtensorflow); which packages are present is therefore passed in for the ordering tests.
const only = (...names: BackendName[]) => (name: BackendName) => names.includes(name);

describe('backend choice', () => {
  it('auto prefers onnx, then tfjs-node-gpu, then tfjs-node, then wasm, then cpu', () => {
    expect(backendCandidates('auto', only('cpu', 'wasm', 'onnx', 'tfjs-node', 'tfjs-node-gpu'))).toEqual(['onnx', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']);
    expect(backendCandidates('auto', only('cpu', 'wasm', 'onnx'))).toEqual(['onnx', 'wasm', 'cpu']);
    expect(backendCandidates('auto', only('cpu', 'wasm', 'tfjs-node', 'tfjs-node-gpu'))).toEqual(['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']);
    expect(backendCandidates('auto', only('cpu', 'wasm', 'tfjs-node'))).toEqual(['tfjs-node', 'wasm', 'cpu']);
    expect(backendCandidates('auto', only('cpu', 'wasm'))).toEqual(['wasm', 'cpu']);
    expect(backendCandidates('auto', only('cpu'))).toEqual(['cpu']);
  });

  it('a named backend is the only candidate; a missing one is PW_E_BACKEND', () => {
    expect(backendCandidates('cpu', only('cpu', 'wasm'))).toEqual(['cpu']);
    expect(() => backendCandidates('tfjs-node-gpu', only('cpu', 'wasm'))).toThrow(/PW_E_BACKEND.*@tensorflow\/tfjs-node-gpu/);
    expect(() => backendCandidates('auto', only())).toThrow(PlankwatchError);
  });

  it('onnx is backed up by the portable TensorFlow.js backends, and tried even when it seems missing (the log then says why)', () => {
    expect(backendCandidates('onnx', only('cpu', 'wasm', 'onnx', 'tfjs-node'))).toEqual(['onnx', 'wasm', 'cpu']);
    expect(backendCandidates('onnx', only('cpu'))).toEqual(['onnx', 'cpu']);
  });

  it('sees what is installed here', () => {
    expect(isInstalled('onnx')).toBe(true);
    expect(isInstalled('wasm')).toBe(true);
    expect(isInstalled('cpu')).toBe(true);
  });

  it('Classifier.start() rejects a requested backend that is not installed', async () => {
    if (isInstalled('tfjs-node')) return; // only meaningful where the package is absent
    const c = new Classifier({
      ensembleFile: 'unused.json',
      modelsDir: 'unused',
      backend: 'tfjs-node',
      workers: 1,
      maxBatch: 8,
      maxWaitMs: 5,
      topK: 3,
      logger: silentLogger(),
    });
    await expect(c.start()).rejects.toMatchObject({ code: 'PW_E_BACKEND' });
  });
});
