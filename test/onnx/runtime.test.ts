// Choosing ONNX Runtime's execution provider and threads: the config check, the thread layout, and
// a provider that is configured but not installed (CUDA, whose libraries npm never downloads here):
// passed over with the reason, and when it is the only one, the fallback to TensorFlow.js.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier } from '../../src/classify/classifier.js';
import { onnxLayout, providerOrder, softmaxRows } from '../../src/classify/onnx-runtime.js';
import { loadConfig } from '../../src/config/config.js';
import { removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { captureLogger } from './helpers.js';

let dir = '';
let file = '';

beforeAll(async () => {
  dir = await tempModelsDir();
  await saveTinyMember(dir, { name: 'alpha', version: 'v1', classes: ['a', 'b', 'c'], size: 16, seed: 1 });
  file = await writeEnsemble(dir, { version: 'e1', voting: 'soft', members: [{ name: 'alpha', version: 'v1' }] });
});
afterAll(async () => removeDir(dir));

describe('ONNX Runtime settings', () => {
  it('classify.onnxProviders: auto is TensorRT, CUDA, CPU; a list is taken in its order; an unknown name is a config error', () => {
    expect(providerOrder('auto')).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(providerOrder(' CUDA, cpu ')).toEqual(['cuda', 'cpu']);
    expect(() => providerOrder('cuda,rocm')).toThrow(/PW_E_CONFIG_INVALID.*unknown execution provider "rocm"/);
    expect(() => loadConfig({ env: { PLANKWATCH_CLASSIFY_ONNX_PROVIDERS: 'gpu' } })).toThrow(/classify\.onnxProviders: unknown execution provider "gpu"/);
    expect(loadConfig({ env: { PLANKWATCH_CLASSIFY_ONNX_PROVIDERS: 'cuda,cpu' } }).classify.onnxProviders).toBe('cuda,cpu');
  });

  it('threads: by default one inference thread using every core; either setting fixes the other', () => {
    expect(onnxLayout(0, 0, 2)).toEqual({ workers: 1, threads: 2 });
    expect(onnxLayout(0, 0, 8)).toEqual({ workers: 1, threads: 8 });
    expect(onnxLayout(2, 0, 2)).toEqual({ workers: 2, threads: 1 });
    expect(onnxLayout(0, 1, 4)).toEqual({ workers: 4, threads: 1 });
    expect(onnxLayout(3, 2, 2)).toEqual({ workers: 3, threads: 2 });
  });

  it('softmax of logits rows', () => {
    const p = softmaxRows(Float32Array.from([0, 0, 1000, 1, 2, 3]), 3);
    expect([...p.subarray(0, 3)]).toEqual([0, 0, 1]);
    expect(p[3]! + p[4]! + p[5]!).toBeCloseTo(1, 6);
    expect(p[5]! / p[4]!).toBeCloseTo(Math.E, 5);
  });

  it('a configured provider that is not installed is passed over with its reason; the CPU runs', async () => {
    const { logger, lines } = captureLogger();
    const c = new Classifier({ ensembleFile: file, modelsDir: dir, backend: 'onnx', onnx: { providers: 'cuda,cpu', threads: 1 }, onnxWorkers: 1, workers: 0, maxBatch: 8, maxWaitMs: 2, topK: 3, logger });
    expect(await c.start()).toMatchObject({ backend: 'onnx', provider: 'cpu', workers: 1 });
    await c.stop();
    const started = lines.find((l) => l.msg.startsWith('inference backend started'))!;
    expect(started).toMatchObject({ provider: 'cpu', intraOpThreads: 1, passedOver: [expect.stringMatching(/^cuda: libonnxruntime_providers_cuda\.so is not installed/)] });
  });

  it('CUDA alone, not installed: PW_E_ONNX_RUNTIME says why, and TensorFlow.js classifies', async () => {
    const { logger, lines } = captureLogger();
    const c = new Classifier({ ensembleFile: file, modelsDir: dir, backend: 'auto', onnx: { providers: 'cuda', threads: 0 }, workers: 1, maxBatch: 8, maxWaitMs: 2, topK: 3, logger });
    expect(await c.start()).toMatchObject({ backend: 'wasm' });
    await c.stop();
    const warning = lines.find((l) => l.code === 'PW_E_ONNX_RUNTIME')!;
    expect((warning.err as { message: string }).message).toMatch(/No ONNX Runtime execution provider of classify\.onnxProviders "cuda" could run \(cuda: .*not installed/);
  });
});
