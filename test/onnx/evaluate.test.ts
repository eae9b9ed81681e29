// `plankwatch evaluate` on ONNX Runtime against TensorFlow.js, and model.onnx written by training:
// members trained here (train writes model.onnx beside model.json, covered by the checksums), and
// the shipped ensemble with the views its file gives each member, scored both ways on real images.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { readMeta } from '../../src/classify/model-files.js';
import { NO_AUGMENT } from '../../src/learn/augment.js';
import { runEvaluation, type EvaluateOptions, type EvaluationSummary } from '../../src/learn/evaluate.js';
import { runTraining } from '../../src/learn/train-run.js';

const FIXTURES = path.join('test', 'fixtures', 'ndsb');
let tmp = '';
let ensembleFile = '';

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-onnx-eval-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  const modelsDir = path.join(tmp, 'models');
  for (const [member, architecture] of [['a', 'pw-tiny-32'], ['b', 'pw-p4-tiny-32']] as const) {
    await runTraining({
      data: FIXTURES, member, architecture, modelsDir, version: 'v1', seed: 5, split: path.join(modelsDir, 'splits', 'fixtures'),
      validationFraction: 0.25, epochs: 2, batchSize: 8, learningRate: 0.003, weightDecay: 0, classWeights: 'none',
      augment: NO_AUGMENT, patience: 0, maxMinutes: 0, resume: false, backend: 'wasm', command: 'plankwatch train (test)',
    });
  }
  const ensemble: EnsembleFile = { version: 'test', voting: 'geometric', members: [{ name: 'a', version: 'v1', tta: ['identity', 'rot45'] }, { name: 'b', version: 'v1' }] };
  ensembleFile = path.join(modelsDir, 'ensemble.json');
  await writeFile(ensembleFile, JSON.stringify(ensemble));
}, 120_000);

/** Every variant's top-1 and log-loss agree, and evaluation.json names the backend. */
function expectSameScores(onnx: EvaluationSummary, tfjs: EvaluationSummary): void {
  expect(onnx.variants.map((v) => `${v.name}${v.tta ? '+tta' : ''}`)).toEqual(tfjs.variants.map((v) => `${v.name}${v.tta ? '+tta' : ''}`));
  onnx.variants.forEach((v, i) => {
    const w = tfjs.variants[i]!;
    expect(v.metrics.top1).toBe(w.metrics.top1);
    expect(Math.abs(v.metrics.logLoss - w.metrics.logLoss)).toBeLessThan(1e-4);
  });
}

describe('evaluate on ONNX Runtime', () => {
  it('train writes model.onnx beside model.json, and meta.json\'s checksums cover it', async () => {
    for (const member of ['a', 'b']) {
      const dir = path.join(tmp, 'models', member, 'v1');
      expect(existsSync(path.join(dir, 'model.onnx'))).toBe(true);
      expect(Object.keys((await readMeta(dir)).checksums!).sort()).toEqual(['model.json', 'model.onnx', 'weights.bin']);
    }
  });

  it('scores members, votes and views as TensorFlow.js does', async () => {
    const base: EvaluateOptions = { data: FIXTURES, ensemble: ensembleFile, all: false, allowLeak: false, tta: ['identity', 'rot90', 'flipH', 'rot45'], outDir: path.join(tmp, 'eval'), limit: 0, backend: 'onnx' };
    const onnx = await runEvaluation(base);
    expect(JSON.parse(readFileSync(path.join(tmp, 'eval', 'evaluation.json'), 'utf8')).backend).toBe('onnx');
    const tfjs = await runEvaluation({ ...base, backend: 'wasm', outDir: path.join(tmp, 'eval-wasm') });
    expect(JSON.parse(readFileSync(path.join(tmp, 'eval-wasm', 'evaluation.json'), 'utf8')).backend).toBe('wasm');
    expect(onnx.variants.some((v) => v.name.includes('views as in the ensemble file'))).toBe(true);
    expectSameScores(onnx, tfjs);
  });

  it('scores the shipped ensemble, with its views, as TensorFlow.js does on every fixture image', async () => {
    // The fixtures may be among the shipped members' training images: what is compared here is
    // the two runtimes on the same images, not the accuracy.
    const base: EvaluateOptions = { data: FIXTURES, ensemble: 'models/ensemble.json', modelsDir: 'models', all: true, allowLeak: true, tta: ['identity'], outDir: path.join(tmp, 'eval-shipped'), limit: 0, backend: 'onnx' };
    const onnx = await runEvaluation(base);
    const tfjs = await runEvaluation({ ...base, backend: 'wasm', outDir: path.join(tmp, 'eval-shipped-wasm') });
    expect(onnx.count).toBe(96);
    expectSameScores(onnx, tfjs);
  });
});
