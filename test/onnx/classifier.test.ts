// The classify stage on ONNX Runtime (backend "onnx"), through its real inference thread, against
// the TensorFlow.js wasm path on the same real fixture images: same probabilities, same views,
// same votes. Members are tiny untrained networks (test/classify/helpers.ts) and the shipped
// ensemble itself.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, type ClassifierOptions } from '../../src/classify/classifier.js';
import { loadEnsemble } from '../../src/classify/ensemble-loader.js';
import { readMeta } from '../../src/classify/model-files.js';
import { convertMembers, convertVersion } from '../../src/classify/onnx-convert.js';
import { silentLogger } from '../../src/log.js';
import type { EnsemblePrediction, PreparedFrame } from '../../src/types.js';
import { fixtureImages, prepareFixtures, removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { captureLogger } from './helpers.js';

let dir: string;
let e1File: string;
let frames: PreparedFrame[];
const running: Classifier[] = [];

beforeAll(async () => {
  dir = await tempModelsDir();
  await saveTinyMember(dir, { name: 'alpha', version: 'v1', classes: ['copepod', 'diatom', 'detritus'], size: 16, seed: 1 });
  // Another class order, another input size, and logits instead of softmax.
  await saveTinyMember(dir, { name: 'beta', version: 'v1', classes: ['detritus', 'copepod', 'diatom', 'larvacean'], size: 24, seed: 2, logits: true });
  await saveTinyMember(dir, { name: 'gamma', version: 'v1', classes: ['copepod', 'diatom', 'detritus', 'protist'], size: 16, seed: 3 });
  e1File = await writeEnsemble(dir, {
    version: 'e1',
    voting: 'geometric',
    members: [
      { name: 'alpha', version: 'v1', tta: ['identity', 'rot45', 'rot90'] },
      { name: 'beta', version: 'v1', weight: 2 },
      { name: 'gamma', version: 'v1', tta: ['flipH', 'rot225'] },
    ],
  });
  frames = await prepareFixtures(await fixtureImages(), (await loadEnsemble(e1File, dir)).inputs);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(running.map((c) => c.stop()));
  await removeDir(dir);
});

async function started(overrides: Partial<ClassifierOptions>): Promise<Classifier> {
  const c = new Classifier({ ensembleFile: e1File, modelsDir: dir, backend: 'onnx', workers: 2, maxBatch: 8, maxWaitMs: 5, topK: 3, logger: silentLogger(), ...overrides });
  running.push(c);
  await c.start();
  return c;
}

async function classifyAll(c: Classifier, input: PreparedFrame[]): Promise<EnsemblePrediction[]> {
  return Promise.all(input.map((f) => c.classify(f)));
}

function expectSame(a: EnsemblePrediction, b: EnsemblePrediction, tolerance: number): void {
  expect(a.label).toBe(b.label);
  for (const key of ['probability', 'margin', 'disagreement'] as const) expect(Math.abs(a[key] - b[key])).toBeLessThan(tolerance);
  a.topK.forEach((c, i) => expect(Math.abs(c.probability - b.topK[i]!.probability)).toBeLessThan(tolerance));
  a.members.forEach((m, j) => m.topK.forEach((c, i) => expect(Math.abs(c.probability - b.members[j]!.topK[i]!.probability)).toBeLessThan(tolerance)));
}

describe('classify on ONNX Runtime', () => {
  let wasm: EnsemblePrediction[];

  beforeAll(async () => {
    const c = await started({ backend: 'wasm' });
    wasm = await classifyAll(c, frames);
    await c.stop();
  });

  it('converts versions without model.onnx at load (with a warning), and classifies as the wasm path does, views and vote included', async () => {
    const { logger, lines } = captureLogger();
    const c = await started({ logger });
    const info = c.modelInfo();
    expect(info).toMatchObject({ backend: 'onnx', provider: 'cpu', workers: 1 });
    const got = await classifyAll(c, frames);
    got.forEach((p, i) => expectSame(p, wasm[i]!, 1e-5));

    const startLine = lines.find((l) => l.msg.startsWith('inference backend started'))!;
    expect(startLine).toMatchObject({ backend: 'onnx', requested: 'onnx', provider: 'cpu' });
    // No GPU libraries are installed here: the log says so for each GPU provider it passed over.
    expect(startLine.passedOver).toEqual([expect.stringMatching(/^tensorrt: .*not installed/), expect.stringMatching(/^cuda: .*not installed/)]);
    const warn = lines.find((l) => l.level === 40 && /converted from model\.json/.test(l.msg));
    expect(warn?.members).toEqual(['alpha/v1', 'beta/v1', 'gamma/v1']);
    const stats = await c.stats();
    expect(stats.workers).toHaveLength(1);
    expect(stats.workers[0]!.numBytes).toBeGreaterThan(0);
    await c.stop();
  });

  it('runs model.onnx once converted (covered by the checksums), in two inference threads, and in a second classifier of the same process', async () => {
    const results = await convertMembers({ dirs: [], modelsDir: dir, ensembleFile: e1File, all: false, log: () => {} });
    expect(results.map((r) => r.written)).toEqual([true, true, true]);
    const meta = await readMeta(path.join(dir, 'alpha', 'v1'));
    expect(Object.keys(meta.checksums!).sort()).toEqual(['model.json', 'model.onnx', 'weights.bin']);
    expect((await convertVersion(path.join(dir, 'alpha', 'v1'))).written).toBe(false);

    const { logger, lines } = captureLogger();
    const c = await started({ logger });
    const got = await classifyAll(c, frames);
    got.forEach((p, i) => expectSame(p, wasm[i]!, 1e-5));
    expect(lines.some((l) => /converted from model\.json/.test(l.msg))).toBe(false);
    const second = await started({ onnxWorkers: 2, onnx: { providers: 'cpu', threads: 1 } });
    expect(second.modelInfo()).toMatchObject({ backend: 'onnx', provider: 'cpu', workers: 2 });
    const again = await classifyAll(second, frames.slice(0, 10));
    again.forEach((p, i) => expectSame(p, got[i]!, 1e-6));
    await second.stop();
    await c.stop();
  });

  it('hot-swaps to another ensemble and back between batches', async () => {
    const c = await started({ maxBatch: 4, maxWaitMs: 2 });
    const e2 = await writeEnsemble(dir, { version: 'e2', voting: 'soft', members: [{ name: 'gamma', version: 'v1' }] }, 'e2.json');
    const early = frames.map((f) => c.classify(f));
    expect((await c.swapEnsemble(e2)).ensembleVersion).toBe('e2');
    const late = await classifyAll(c, frames.slice(0, 10));
    expect((await Promise.all(early)).length).toBe(frames.length);
    expect(late.every((p) => p.ensembleVersion === 'e2' && p.members.length === 1)).toBe(true);
    expect((await c.swapEnsemble(e1File)).ensembleVersion).toBe('e1');
    const back = await classifyAll(c, frames.slice(0, 10));
    back.forEach((p, i) => expectSame(p, wasm[i]!, 1e-5));
  });

  it('refuses a model.onnx changed after meta.json, or one meta.json does not list, with PW_E_MODEL_LOAD', async () => {
    const file = path.join(dir, 'gamma', 'v1', 'model.onnx');
    const good = await readFile(file);
    const e3 = await writeEnsemble(dir, { version: 'e3', voting: 'soft', members: [{ name: 'gamma', version: 'v1' }] }, 'e3.json');
    const tampered = Buffer.from(good);
    tampered[tampered.length - 5] ^= 0xff;
    await writeFile(file, tampered);
    const c = new Classifier({ ensembleFile: e3, modelsDir: dir, backend: 'onnx', workers: 1, maxBatch: 8, maxWaitMs: 5, topK: 3, logger: silentLogger() });
    await expect(c.start()).rejects.toMatchObject({ code: 'PW_E_MODEL_LOAD', message: expect.stringMatching(/checksum mismatch.*model\.onnx/) });
    await writeFile(file, good);

    await saveTinyMember(dir, { name: 'delta', version: 'v1', classes: ['a', 'b'], size: 16, seed: 4 });
    await writeFile(path.join(dir, 'delta', 'v1', 'model.onnx'), good);
    const e4 = await writeEnsemble(dir, { version: 'e4', voting: 'soft', members: [{ name: 'delta', version: 'v1' }] }, 'e4.json');
    await expect(loadEnsemble(e4, dir)).rejects.toMatchObject({ code: 'PW_E_MODEL_LOAD', message: expect.stringMatching(/model\.onnx is not covered by the checksums/) });
  });
});
