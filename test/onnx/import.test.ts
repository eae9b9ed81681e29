// `plankwatch models import`: a classifier exported by PyTorch's own ONNX exporter
// (test/fixtures/onnx/tiny-pytorch.onnx, made by make_import_fixture.py with Debian's
// python3-torch) becomes a member version, runs as PyTorch runs it, joins an ensemble beside a
// plankwatch member, and is evaluated; what does not fit is PW_E_MODEL_IMPORT.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier } from '../../src/classify/classifier.js';
import { InferenceEngine } from '../../src/classify/engine.js';
import { loadEnsemble } from '../../src/classify/ensemble-loader.js';
import { importOnnx, type ImportOptions } from '../../src/classify/onnx-import.js';
import { startOnnxRuntime } from '../../src/classify/onnx-runtime.js';
import { runEvaluation } from '../../src/learn/evaluate.js';
import { silentLogger } from '../../src/log.js';
import { fixtureImages, prepareFixtures, removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { maxAbsDiff } from './helpers.js';

const FIXTURE = path.resolve('test/fixtures/onnx');
const expected = JSON.parse(readFileSync(path.join(FIXTURE, 'expected.json'), 'utf8')) as { size: number; mean: number; std: number; pixels: number[]; probabilities: number[][] };
let dir = '';

const options = (overrides: Partial<ImportOptions> = {}): ImportOptions => ({
  file: path.join(FIXTURE, 'tiny-pytorch.onnx'),
  classesFile: path.join(FIXTURE, 'classes.txt'),
  member: 'torch',
  version: 'v1',
  modelsDir: dir,
  mean: expected.mean,
  std: expected.std,
  background: 255,
  invert: true,
  noUpscale: false,
  architecture: 'tiny CNN, PyTorch',
  command: 'plankwatch models import (test)',
  ...overrides,
});

beforeAll(async () => {
  dir = await tempModelsDir();
  await saveTinyMember(dir, { name: 'alpha', version: 'v1', classes: ['copepod_cyclopoid_oithona_eggs', 'detritus_other', 'diatom'], size: 16, seed: 1 });
});
afterAll(async () => removeDir(dir));

describe('models import', () => {
  it('registers the PyTorch model with what it reads and gives, and runs it as PyTorch does', async () => {
    const { meta } = await importOnnx(options());
    expect(meta.onnx).toEqual({ input: 'input', output: 'logits', layout: 'nchw', channels: 1, mean: 0.5, std: 0.25, outputs: 'logits' });
    expect(meta.input).toEqual({ size: 32, channels: 1 });
    expect(meta.classes).toHaveLength(5);
    expect(Object.keys(meta.checksums!)).toEqual(['model.onnx']);

    // The engine on this thread: the two images PyTorch classified, through the import's adapter
    // (normalisation, NCHW, softmax of the logits).
    await startOnnxRuntime({ providers: 'cpu', threads: 1 });
    const e = await loadEnsemble({ version: 'x', voting: 'soft', members: [{ name: 'torch', version: 'v1' }] }, dir);
    const m = e.members[0]!;
    const engine = new InferenceEngine('onnx');
    await engine.load({ gen: 1, members: [{ id: 'torch/v1', dir: m.dir, inputSize: 32, inputKey: m.inputKey, numClasses: 5, tta: ['identity'], fill: 0, onnxSha256: m.meta.checksums!['model.onnx']!, onnxIo: m.meta.onnx! }] });
    const out = await engine.run({ gen: 1, count: 2, inputs: [{ key: m.inputKey, size: 32, pixels: Float32Array.from(expected.pixels) }] });
    expect(maxAbsDiff(out.probs[0]!, expected.probabilities.flat())).toBeLessThan(1e-5);
    await engine.dispose();
  });

  it('joins an ensemble beside a plankwatch member on ONNX Runtime; the wasm path refuses it by name', async () => {
    const file = await writeEnsemble(dir, { version: 'mixed', voting: 'soft', members: [{ name: 'torch', version: 'v1' }, { name: 'alpha', version: 'v1', tta: ['identity', 'rot90'] }] }, 'mixed.json');
    const e = await loadEnsemble(file, dir);
    const frames = (await prepareFixtures(await fixtureImages(), e.inputs)).slice(0, 24);
    const c = new Classifier({ ensembleFile: file, modelsDir: dir, backend: 'onnx', workers: 1, maxBatch: 8, maxWaitMs: 2, topK: 3, logger: silentLogger() });
    await c.start();
    try {
      const got = await Promise.all(frames.map((f) => c.classify(f)));
      expect(got.every((p) => p.members.map((x) => x.member).join() === 'torch,alpha')).toBe(true);
      // The union of the two members' classes: the five of classes.txt and diatom.
      expect(c.modelInfo().classes).toHaveLength(6);
      for (const p of got) expect(p.members[0]!.topK.reduce((a, t) => a + t.probability, 0)).toBeLessThanOrEqual(1 + 1e-6);
    } finally {
      await c.stop();
    }
    const wasm = new Classifier({ ensembleFile: file, modelsDir: dir, backend: 'wasm', workers: 1, maxBatch: 8, maxWaitMs: 2, topK: 3, logger: silentLogger() });
    await expect(wasm.start()).rejects.toMatchObject({ code: 'PW_E_MODEL_LOAD', message: expect.stringMatching(/torch\/v1 was imported as model\.onnx alone.*classify\.backend/) });
  });

  it('is evaluated on ONNX Runtime', async () => {
    const file = await writeEnsemble(dir, { version: 'alone', voting: 'soft', members: [{ name: 'torch', version: 'v1' }] }, 'alone.json');
    const summary = await runEvaluation({ data: 'test/fixtures/ndsb', ensemble: file, modelsDir: dir, all: true, allowLeak: false, tta: ['identity', 'rot90'], outDir: path.join(dir, 'eval'), limit: 0, backend: 'onnx' });
    expect(summary.count).toBe(96);
    expect(summary.variants.map((v) => `${v.name}${v.tta ? '+tta' : ''}`)).toEqual(['torch/v1', 'torch/v1+tta']);
    await expect(runEvaluation({ data: 'test/fixtures/ndsb', ensemble: file, modelsDir: dir, all: true, allowLeak: false, tta: ['identity'], outDir: path.join(dir, 'eval2'), limit: 0, backend: 'wasm' })).rejects.toThrow(/imported as model\.onnx alone/);
  });

  it('refuses what does not fit with PW_E_MODEL_IMPORT, and leaves nothing behind', async () => {
    const four = path.join(dir, 'four.txt');
    await writeFile(four, 'a\nb\nc\nd\n');
    await expect(importOnnx(options({ version: 'v2', classesFile: four }))).rejects.toMatchObject({ code: 'PW_E_MODEL_IMPORT', message: expect.stringMatching(/must be \[batch, 4\]/) });
    await expect(importOnnx(options())).rejects.toMatchObject({ code: 'PW_E_MODEL_IMPORT', message: expect.stringMatching(/already exists/) });
    await expect(importOnnx(options({ version: 'v3', layout: 'nhwc' }))).rejects.toMatchObject({ code: 'PW_E_MODEL_IMPORT', message: expect.stringMatching(/1 or 3 channels/) });
    await expect(importOnnx(options({ version: 'v4', input: 'image' }))).rejects.toMatchObject({ code: 'PW_E_MODEL_IMPORT', message: expect.stringMatching(/no input "image"/) });
    expect(() => readFileSync(path.join(dir, 'torch', 'v2', 'meta.json'))).toThrow();
  });

  it('is wired to the command line', () => {
    const config = path.join(dir, 'config.yaml');
    spawnSync('sh', ['-c', `printf 'classify:\\n  modelsDir: "%s"\\n' "${dir}" > "${config}"`]);
    const run = spawnSync(process.execPath, ['bin/plankwatch.js', 'models', 'import', path.join(FIXTURE, 'tiny-pytorch.onnx'), '--classes', path.join(FIXTURE, 'classes.txt'), '--member', 'torch', '--version', 'cli', '--mean', '0.5', '--std', '0.25', '-c', config], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/imported torch\/cli .*32 px, nchw with 1 channel\(s\), \(pixel - 0.5\) \/ 0.25, gives logits/);
    expect(run.status).toBe(0);
  });
});
