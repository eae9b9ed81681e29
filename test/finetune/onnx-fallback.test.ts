// Head fine-tuning when onnxruntime-node cannot be loaded in the fine-tuning thread: a member with
// model.json trains its head through TensorFlow.js as before; a member imported as model.onnx
// alone cannot, and the run fails naming it. The failure is real, not simulated: a worker thread
// of the test loads the addon first, after which no other thread of the process can load it.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMeta, writeMeta } from '../../src/classify/model-files.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { defaults } from '../../src/config/config.js';
import { initBackend } from '../../src/engine/backend.js';
import { jobSettings, runFinetuneJob, type FinetuneJob, type JobLabel } from '../../src/finetune/job.js';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { fixtureImages } from '../helpers/images.js';
import { saveTinyMember } from './helpers.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/ndsb');
const ONNX_FIXTURE = path.resolve(import.meta.dirname, '../fixtures/onnx');
const labels: JobLabel[] = fixtureImages()
  .filter((i) => i.label === 'chaetognath_other')
  .map((i) => ({ sha256: i.sha256, label: i.label, file: path.join(FIXTURES, i.label, i.name) }));
let tmp = '';

function job(modelsDir: string, ensemble: EnsembleFile): FinetuneJob {
  return {
    runId: 1, modelsDir, ensemble, version: 'ft1', train: labels, evalLabels: [], evalData: null, referenceData: null, replayData: FIXTURES, seed: 1,
    ...jobSettings({ ...defaults().finetune, backend: 'wasm', niceness: 0, maxMinutes: 0 }),
    replayPerClass: 2, epochs: 2, batchSize: 8,
  };
}

beforeAll(async () => {
  const addon = createRequire(import.meta.url).resolve('onnxruntime-node');
  const worker = new Worker(`require(${JSON.stringify(addon)}); require('node:worker_threads').parentPort.postMessage('loaded');`, { eval: true });
  expect(await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))).toBe('loaded');
  await worker.terminate();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-finetune-fallback-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  await initBackend('wasm');
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

describe('head fine-tuning without ONNX Runtime', () => {
  it('a member with model.json trains its head through TensorFlow.js, saying why', async () => {
    const modelsDir = path.join(tmp, 'tfjs');
    const ensemble = await saveTinyMember(modelsDir, ['acantharia_protist', 'chaetognath_other', 'detritus_other']);
    const logs: string[] = [];
    await runFinetuneJob(job(modelsDir, ensemble), undefined, (l) => logs.push(l));
    expect(logs.join('\n')).toMatch(/tiny\/v1: onnxruntime-node could not be loaded.*; its head is trained with TensorFlow\.js/);
    const meta = await readMeta(path.join(modelsDir, 'tiny', 'ft1'));
    expect(meta.training.finetune).toMatchObject({ backend: 'wasm' });
  }, 120_000);

  it('a member imported as model.onnx alone fails the run with PW_E_FINETUNE_FAILED, naming it and ONNX Runtime', async () => {
    // The version `plankwatch models import` writes (made by hand here: importing runs ONNX Runtime).
    const modelsDir = path.join(tmp, 'imported');
    const dir = path.join(modelsDir, 'torch', 'v1');
    await mkdir(dir, { recursive: true });
    await copyFile(path.join(ONNX_FIXTURE, 'tiny-pytorch.onnx'), path.join(dir, 'model.onnx'));
    const classes = (await readFile(path.join(ONNX_FIXTURE, 'classes.txt'), 'utf8')).split('\n').filter((c) => c !== '');
    await writeMeta(dir, {
      name: 'torch', version: 'v1', classes, input: { size: 32, channels: 1 }, preprocessing: DEFAULT_PREPROCESS, architecture: 'tiny CNN, PyTorch',
      training: { command: 'plankwatch models import', seed: 0, dataFingerprint: 'unknown (trained elsewhere)' }, metrics: {}, parent: null, createdAt: '2026-11-28T00:00:00Z',
      onnx: { input: 'input', output: 'logits', layout: 'nchw', channels: 1, mean: 0.5, std: 0.25, outputs: 'logits' },
    });
    const ensemble: EnsembleFile = { version: 'E1', voting: 'soft', members: [{ name: 'torch', version: 'v1' }] };
    await expect(runFinetuneJob(job(modelsDir, ensemble))).rejects.toMatchObject({
      code: 'PW_E_FINETUNE_FAILED',
      message: expect.stringMatching(/Member torch\/v1 was imported as model\.onnx alone and ONNX Runtime, which fine-tunes its head, did not start: onnxruntime-node could not be loaded/),
    });
    expect(existsSync(path.join(modelsDir, 'torch', 'ft1'))).toBe(false);
  }, 120_000);
});
