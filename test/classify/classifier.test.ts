// The classify stage through real worker threads running the wasm backend, on real NDSB fixture
// images prepared by the real preprocess stage. The models are tiny untrained CNNs built by the
// test (helpers.ts): the plumbing is under test, not accuracy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/classify/backend.js';
import { Classifier, type ClassifierOptions } from '../../src/classify/classifier.js';
import { InferenceEngine, type GenerationSpec } from '../../src/classify/engine.js';
import { loadEnsemble, type LoadedEnsemble } from '../../src/classify/ensemble-loader.js';
import { ensemblePrediction } from '../../src/classify/prediction.js';
import { transformBatch, type TtaTransform } from '../../src/classify/tta.js';
import { silentLogger } from '../../src/log.js';
import type { EnsemblePrediction, PreparedFrame } from '../../src/types.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { fixtureImages, prepareFixtures, removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from './helpers.js';

let dir: string;
let e1File: string;
let frames: PreparedFrame[];
const stopList: Classifier[] = [];

beforeAll(async () => {
  dir = await tempModelsDir();
  await saveTinyMember(dir, { name: 'alpha', version: 'v1', classes: ['copepod', 'diatom', 'detritus'], size: 16, seed: 1 });
  // Different class order, one extra class, another input size, and logits instead of softmax.
  await saveTinyMember(dir, { name: 'beta', version: 'v1', classes: ['detritus', 'copepod', 'diatom', 'larvacean'], size: 24, seed: 2, logits: true });
  await saveTinyMember(dir, { name: 'gamma', version: 'v1', classes: ['copepod', 'diatom', 'detritus', 'protist'], size: 16, seed: 3 });
  e1File = await writeEnsemble(dir, {
    version: 'e1',
    voting: 'soft',
    members: [
      { name: 'alpha', version: 'v1' },
      { name: 'beta', version: 'v1', weight: 2 },
    ],
  });
  const e1 = await loadEnsemble(e1File, dir);
  frames = await prepareFixtures(await fixtureImages(), e1.inputs);
  await initBackend(['wasm']); // for the main-thread reference
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(stopList.map((c) => c.stop()));
  await removeDir(dir);
});

function options(overrides: Partial<ClassifierOptions> = {}): ClassifierOptions {
  return {
    ensembleFile: e1File,
    modelsDir: dir,
    backend: 'wasm',
    workers: 2,
    maxBatch: 8,
    maxWaitMs: 5,
    topK: 3,
    logger: silentLogger(),
    ...overrides,
  };
}

async function started(overrides: Partial<ClassifierOptions> = {}): Promise<Classifier> {
  const c = new Classifier(options(overrides));
  stopList.push(c);
  await c.start();
  return c;
}

function specOf(e: LoadedEnsemble, gen: number, tta?: TtaTransform[]): GenerationSpec {
  return {
    gen,
    members: e.members.map((m) => ({ id: m.name, dir: m.dir, inputSize: m.meta.input.size, inputKey: m.inputKey, numClasses: m.meta.classes.length, tta: tta ?? m.tta })),
  };
}

/** The same ensemble on the main thread, all frames in one batch. */
async function mainThreadPredictions(e: LoadedEnsemble, input: PreparedFrame[]): Promise<EnsemblePrediction[]> {
  const engine = new InferenceEngine();
  await engine.load(specOf(e, 1));
  const inputs = e.inputs.map(({ key, size }) => {
    const pixels = new Float32Array(input.length * size * size);
    input.forEach((f, i) => pixels.set(f.inputs.get(key)!.pixels, i * size * size));
    return { key, size, pixels };
  });
  const out = await engine.run({ gen: 1, count: input.length, inputs });
  await engine.dispose();
  const counts = e.members.map((m) => m.meta.classes.length);
  return input.map((_, i) => ensemblePrediction(e, out.probs.map((p, m) => p.subarray(i * counts[m]!, (i + 1) * counts[m]!)), 3));
}

function expectSame(a: EnsemblePrediction, b: EnsemblePrediction): void {
  expect(a.label).toBe(b.label);
  expect(a.ensembleVersion).toBe(b.ensembleVersion);
  for (const key of ['probability', 'margin', 'disagreement'] as const) expect(Math.abs(a[key] - b[key])).toBeLessThan(1e-5);
  expect(a.topK.map((c) => c.label)).toEqual(b.topK.map((c) => c.label));
  a.topK.forEach((c, i) => expect(Math.abs(c.probability - b.topK[i]!.probability)).toBeLessThan(1e-5));
  a.members.forEach((m, j) => {
    const n = b.members[j]!;
    expect([m.member, m.version]).toEqual([n.member, n.version]);
    m.topK.forEach((c, i) => {
      expect(c.label).toBe(n.topK[i]!.label);
      expect(Math.abs(c.probability - n.topK[i]!.probability)).toBeLessThan(1e-5);
    });
  });
}

describe('Classifier', () => {
  it('classifies fixture images through 2 worker threads exactly as on the main thread', async () => {
    const c = await started();
    expect(c.inputs().map((i) => i.size)).toEqual([16, 24]);
    const t0 = performance.now();
    const got = await Promise.all(frames.map((f) => c.classify(f)));
    const ms = performance.now() - t0;
    const expected = await mainThreadPredictions(await loadEnsemble(e1File, dir), frames);
    got.forEach((p, i) => expectSame(p, expected[i]!));

    const p = got[0]!;
    expect(p.members.map((m) => `${m.member}/${m.version}`)).toEqual(['alpha/v1', 'beta/v1']);
    expect(p.topK).toHaveLength(3);
    expect(p.margin).toBeGreaterThanOrEqual(0);
    expect(p.disagreement).toBeGreaterThanOrEqual(0);
    expect(p.disagreement).toBeLessThanOrEqual(1);
    expect(['copepod', 'diatom', 'detritus', 'larvacean']).toContain(p.label);

    const stats = await c.stats();
    expect(stats.workers).toHaveLength(2);
    expect(stats.workers.every((w) => w.thread === 'worker' && w.batches > 0)).toBe(true);
    expect(stats.frames).toBe(frames.length);
    expect(stats.largestBatch).toBeLessThanOrEqual(8);
    expect(stats.batches).toBeGreaterThanOrEqual(frames.length / 8);
    expect(stats.queueDepth).toBe(0);
    console.info(`[classify] ${frames.length} frames, 2 workers, batch 8: ${(frames.length / (ms / 1000)).toFixed(0)} frames/s, batch latency mean ${stats.batchLatencyMs.mean.toFixed(1)} ms`);
  });

  it('prepares one input per size and preparation: two members of one size, one keeping the organisms\' size, one enlarging them', async () => {
    await saveTinyMember(dir, { name: 'keep96', version: 'v1', classes: ['copepod', 'diatom', 'detritus'], size: 96, seed: 5 });
    await saveTinyMember(dir, { name: 'fit96', version: 'v1', classes: ['copepod', 'diatom', 'detritus'], size: 96, seed: 5, preprocessing: { ...DEFAULT_PREPROCESS, noUpscale: false } });
    const file = await writeEnsemble(dir, { version: 'mixed', voting: 'soft', members: [{ name: 'keep96', version: 'v1' }, { name: 'fit96', version: 'v1' }] }, 'mixed.json');
    const e = await loadEnsemble(file, dir);
    expect(e.inputs.map((i) => i.key)).toEqual(['96', '96-fit']);
    expect(e.members.map((m) => m.inputKey)).toEqual(['96', '96-fit']);
    const mixed = await prepareFixtures(await fixtureImages(), e.inputs);
    // Fixtures smaller than 96 px are enlarged in the second input only.
    expect(mixed.some((f) => f.inputs.get('96')!.pixels.some((v, i) => v !== f.inputs.get('96-fit')!.pixels[i]))).toBe(true);
    const c = await started({ ensembleFile: file });
    expect(c.inputs().map((i) => i.key)).toEqual(['96', '96-fit']);
    const got = await Promise.all(mixed.map((f) => c.classify(f)));
    expect(got.every((p) => p.ensembleVersion === 'mixed')).toBe(true);
    const expected = await mainThreadPredictions(e, mixed);
    got.forEach((p, i) => expectSame(p, expected[i]!));
    // The same weights on different inputs: the members disagree on some frame.
    expect(got.some((p) => p.members[0]!.topK[0]!.probability !== p.members[1]!.topK[0]!.probability)).toBe(true);
    await c.stop();
  });

  it('workers: 0 runs the same inference on the main thread (the path native TensorFlow takes)', async () => {
    const c = await started({ workers: 0 });
    const got = await Promise.all(frames.slice(0, 20).map((f) => c.classify(f)));
    const expected = await mainThreadPredictions(await loadEnsemble(e1File, dir), frames.slice(0, 20));
    got.forEach((p, i) => expectSame(p, expected[i]!));
    const stats = await c.stats();
    expect(stats.workers.map((w) => w.thread)).toEqual(['main']);
    await c.stop();
  });

  it('reports the model, backend and threads', async () => {
    const c = await started({ workers: 1 });
    const info = c.modelInfo();
    expect(info).toMatchObject({ ensembleVersion: 'e1', voting: 'soft', backend: 'wasm', workers: 1, classes: ['copepod', 'diatom', 'detritus', 'larvacean'] });
    expect(info.members.map((m) => [m.name, m.inputSize, m.weight])).toEqual([
      ['alpha', 16, 1],
      ['beta', 24, 2],
    ]);
    expect(info.members[0]!.metrics).toEqual({ top1: 0.5, evaluatedOn: 0 });
  });

  it('respects maxBatch and maxWaitMs', async () => {
    const c = await started({ workers: 1, maxBatch: 4, maxWaitMs: 80 });
    const t0 = performance.now();
    await c.classify(frames[0]!);
    const alone = performance.now() - t0;
    expect(alone).toBeGreaterThanOrEqual(75);

    const before = await c.stats();
    expect(before.batches).toBe(1);
    const t1 = performance.now();
    await Promise.all(frames.slice(0, 20).map((f) => c.classify(f)));
    const full = performance.now() - t1;
    const after = await c.stats();
    expect(after.largestBatch).toBe(4);
    expect(after.batches - before.batches).toBe(5);
    expect(full).toBeLessThan(80 * 5); // full batches do not wait for maxWaitMs
  });

  it('does not leak tensors over 20 batches', async () => {
    const c = await started({ maxBatch: 4, maxWaitMs: 1 });
    await Promise.all(frames.slice(0, 8).map((f) => c.classify(f)));
    const before = (await c.stats()).workers.map((w) => w.numTensors);
    for (let b = 0; b < 20; b++) await Promise.all(frames.slice(b * 4, b * 4 + 4).map((f) => c.classify(f)));
    const after = await c.stats();
    expect(after.workers.map((w) => w.numTensors)).toEqual(before);
    expect(after.batches).toBeGreaterThanOrEqual(22);
    expect(before.every((n) => n > 0)).toBe(true);
  });

  it('stop() answers every frame already accepted, then refuses new ones', async () => {
    const c = await started({ maxBatch: 4, maxWaitMs: 1000 });
    const pending = frames.slice(0, 30).map((f) => c.classify(f));
    expect(c.queueDepth()).toBe(30);
    await c.stop();
    const results = await Promise.all(pending);
    expect(results.every((p) => p.ensembleVersion === 'e1')).toBe(true);
    expect(c.queueDepth()).toBe(0);
    await expect(c.classify(frames[0]!)).rejects.toMatchObject({ code: 'PW_E_INTERNAL' });
  });

  it('swaps the ensemble between batches without dropping a frame', async () => {
    const c = await started({ maxBatch: 4, maxWaitMs: 2 });
    const e2 = await writeEnsemble(
      dir,
      { version: 'e2', voting: 'hard', tta: ['identity', 'rot90', 'flipH'], members: [{ name: 'alpha', version: 'v1' }, { name: 'gamma', version: 'v1' }] },
      'ensemble-e2.json',
    );
    const early = frames.map((f) => c.classify(f));
    const info = await c.swapEnsemble(e2);
    expect(info.ensembleVersion).toBe('e2');
    expect(c.inputs().map((i) => i.size)).toEqual([16]);
    const late = frames.slice(0, 10).map((f) => c.classify(f));
    const earlyResults = await Promise.all(early);
    const lateResults = await Promise.all(late);
    expect(earlyResults).toHaveLength(frames.length);
    expect(earlyResults.every((p) => p.ensembleVersion === 'e1' || p.ensembleVersion === 'e2')).toBe(true);
    expect(lateResults.every((p) => p.ensembleVersion === 'e2' && p.members.length === 2)).toBe(true);

    // A frame prepared for e2 only (no 24x24 input) is classified by e2 ...
    const only16 = { ...frames[0]!, inputs: new Map([['16', frames[0]!.inputs.get('16')!]]) };
    expect((await c.classify(only16)).ensembleVersion).toBe('e2');
    // ... and a swap to a broken ensemble leaves e2 active.
    await expect(c.swapEnsemble({ version: 'e3', voting: 'soft', members: [{ name: 'missing', version: 'v1' }] })).rejects.toMatchObject({ code: 'PW_E_MODEL_LOAD' });
    expect(c.modelInfo().ensembleVersion).toBe('e2');
    expect((await c.classify(frames[1]!)).ensembleVersion).toBe('e2');
  });

  it('start() with a missing member file fails with PW_E_MODEL_LOAD naming it', async () => {
    const file = await writeEnsemble(dir, { version: 'bad', voting: 'soft', members: [{ name: 'alpha', version: 'v7' }] }, 'bad.json');
    const c = new Classifier(options({ ensembleFile: file, workers: 1 }));
    const err = await c.start().then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err?.code).toBe('PW_E_MODEL_LOAD');
    expect(err?.message).toMatch(/alpha[\\/]v7[\\/]meta\.json/);
  });
});

describe('test-time augmentation', () => {
  it('averages each member over the transformed images', async () => {
    const e = await loadEnsemble({ version: 't', voting: 'soft', members: [{ name: 'alpha', version: 'v1' }] }, dir);
    const engine = new InferenceEngine();
    await engine.load(specOf(e, 1, ['identity']));
    await engine.load(specOf(e, 2, ['identity', 'flipH', 'rot270']));
    const x = new Float32Array(5 * 256);
    frames.slice(0, 5).forEach((f, i) => x.set(f.inputs.get('16')!.pixels, i * 256));
    const plain = async (pixels: Float32Array) => (await engine.run({ gen: 1, count: 5, inputs: [{ key: '16', size: 16, pixels }] })).probs[0]!;
    const a = await plain(x);
    const b = await plain(transformBatch(x, 16, 'flipH'));
    const r = await plain(transformBatch(x, 16, 'rot270'));
    const tta = (await engine.run({ gen: 2, count: 5, inputs: [{ key: '16', size: 16, pixels: x }] })).probs[0]!;
    tta.forEach((v, i) => expect(v).toBeCloseTo((a[i]! + b[i]! + r[i]!) / 3, 5));
    await engine.dispose();
  });

  it('gives a member its own views where the ensemble file names them, the others the ensemble\'s', async () => {
    const e = await loadEnsemble(
      { version: 't2', voting: 'soft', tta: ['identity', 'flipV'], members: [{ name: 'alpha', version: 'v1', tta: ['identity', 'rot90'] }, { name: 'gamma', version: 'v1' }] },
      dir,
    );
    expect(e.members.map((m) => m.tta)).toEqual([['identity', 'rot90'], ['identity', 'flipV']]);
    const engine = new InferenceEngine();
    await engine.load(specOf(e, 1, ['identity']));
    await engine.load(specOf(e, 2));
    const x = new Float32Array(5 * 256);
    frames.slice(0, 5).forEach((f, i) => x.set(f.inputs.get('16')!.pixels, i * 256));
    const plain = async (pixels: Float32Array) => (await engine.run({ gen: 1, count: 5, inputs: [{ key: '16', size: 16, pixels }] })).probs;
    const [a0, g0] = await plain(x);
    const [a90] = await plain(transformBatch(x, 16, 'rot90'));
    const [, gV] = await plain(transformBatch(x, 16, 'flipV'));
    const [alpha, gamma] = (await engine.run({ gen: 2, count: 5, inputs: [{ key: '16', size: 16, pixels: x }] })).probs;
    alpha!.forEach((v, i) => expect(v).toBeCloseTo((a0![i]! + a90![i]!) / 2, 5));
    gamma!.forEach((v, i) => expect(v).toBeCloseTo((g0![i]! + gV![i]!) / 2, 5));
    await engine.dispose();
  });
});
