// When onnxruntime-node cannot be loaded, inference falls back to TensorFlow.js with a coded
// warning, never a stop. The failure here is real, not simulated: a worker thread of the test
// loads the addon first, after which no other thread of the process can load it (see
// onnx-runtime.ts).
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier } from '../../src/classify/classifier.js';
import type { PreparedFrame } from '../../src/types.js';
import { fixtureImages, prepareFixtures, removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { loadEnsemble } from '../../src/classify/ensemble-loader.js';
import { captureLogger } from './helpers.js';

let dir: string;
let file: string;
let frames: PreparedFrame[];

beforeAll(async () => {
  const addon = createRequire(import.meta.url).resolve('onnxruntime-node');
  const worker = new Worker(`require(${JSON.stringify(addon)}); require('node:worker_threads').parentPort.postMessage('loaded');`, { eval: true });
  expect(await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))).toBe('loaded');
  await worker.terminate();
  dir = await tempModelsDir();
  await saveTinyMember(dir, { name: 'alpha', version: 'v1', classes: ['copepod', 'diatom', 'detritus'], size: 16, seed: 1 });
  file = await writeEnsemble(dir, { version: 'e1', voting: 'soft', members: [{ name: 'alpha', version: 'v1' }] });
  frames = (await prepareFixtures(await fixtureImages(), (await loadEnsemble(file, dir)).inputs)).slice(0, 12);
});

afterAll(async () => {
  await removeDir(dir);
});

describe('ONNX Runtime fallback', () => {
  it.each(['auto', 'onnx'] as const)('backend %s: ONNX Runtime does not load, PW_E_ONNX_RUNTIME is logged and wasm classifies', async (backend) => {
    const { logger, lines } = captureLogger();
    const c = new Classifier({ ensembleFile: file, modelsDir: dir, backend, workers: 2, maxBatch: 8, maxWaitMs: 5, topK: 3, logger });
    const info = await c.start();
    try {
      expect(info).toMatchObject({ backend: 'wasm', provider: null, workers: 2 });
      const warning = lines.find((l) => l.code === 'PW_E_ONNX_RUNTIME');
      expect(warning).toMatchObject({ level: 40, fallback: ['wasm', 'cpu'] });
      expect((warning!.err as { message: string }).message).toMatch(/onnxruntime-node could not be loaded.*main thread must load it first/);
      const got = await Promise.all(frames.map((f) => c.classify(f)));
      expect(got.every((p) => p.ensembleVersion === 'e1' && p.probability > 0)).toBe(true);
    } finally {
      await c.stop();
    }
  });
});
