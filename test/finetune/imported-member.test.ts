// A member imported as model.onnx alone (`plankwatch models import`, the PyTorch fixture) in the
// active ensemble, fine-tuned by the Finetuner as the daemon runs it: a real store with 24 fixture
// images classified and labelled, a real worker thread, a real model registry. The run trains its
// head on ONNX Runtime features, and the gate promotes the candidate or keeps it.
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Classifier } from '../../src/classify/classifier.js';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { readMeta, verifyChecksums } from '../../src/classify/model-files.js';
import { importOnnx } from '../../src/classify/onnx-import.js';
import { defaults, type Config } from '../../src/config/config.js';
import { Finetuner } from '../../src/finetune/finetuner.js';
import { ModelRegistry } from '../../src/registry/registry.js';
import { silentLogger } from '../../src/log.js';
import { preprocessFrame } from '../../src/preprocess/preprocess.js';
import { fixtureImages } from '../helpers/images.js';
import { seedStore, type Seeded } from '../review/helpers.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/ndsb');
const ONNX_FIXTURE = path.resolve(import.meta.dirname, '../fixtures/onnx');
let s: Seeded;
let modelsDir = '';
let registry: ModelRegistry;
const promoted: string[] = [];

function finetuner(over: Partial<Config['finetune']>): Finetuner {
  const config = { ...defaults().finetune, enabled: false, replayData: FIXTURES, replayPerClass: 3, epochs: 4, batchSize: 8, evalFraction: 0.3, ...over };
  return new Finetuner({
    config,
    repository: s.store.finetuneRepository(),
    review: s.review,
    registry,
    images: { watchDir: s.watchDir, archiveDir: s.archiveDir },
    onPromoted: async (e) => void promoted.push(e.version),
    logger: silentLogger(),
  });
}

beforeEach(async () => {
  process.env.PLANKWATCH_CACHE_DIR = path.join(os.tmpdir(), 'pw-imported-finetune-cache');
  // The first 24 fixture images: acantharia_protist and appendicularian_s_shape, both classes the
  // imported model knows.
  s = seedStore(24, ['acantharia_protist', 'appendicularian_s_shape']);
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pw-imported-finetune-'));
  registry = new ModelRegistry({ modelsDir, ensembleFile: path.join(modelsDir, 'ensemble.json') });
  await importOnnx({
    file: path.join(ONNX_FIXTURE, 'tiny-pytorch.onnx'),
    classesFile: path.join(ONNX_FIXTURE, 'classes.txt'),
    member: 'torch',
    version: 'v1',
    modelsDir,
    mean: 0.5,
    std: 0.25,
    background: 255,
    invert: true,
    noUpscale: false,
    architecture: 'tiny CNN, PyTorch',
    command: 'plankwatch models import (test)',
  });
  const ensemble: EnsembleFile = { version: 'E1', voting: 'soft', members: [{ name: 'torch', version: 'v1' }] };
  await writeFile(path.join(modelsDir, 'ensemble.json'), JSON.stringify(ensemble));
  const truth = new Map(fixtureImages().map((i) => [i.sha256, i.label]));
  for (const sha of s.shas) s.review.label({ sha256: sha, action: 'correct', label: truth.get(sha)!, user: 'sci' });
  promoted.length = 0;
});
afterEach(() => s.cleanup());

describe('fine-tuning an imported ONNX member', () => {
  it('trains its head on ONNX Runtime features, passes a lenient gate, and is promoted; the classifier runs the new model.onnx', async () => {
    const f = finetuner({ maxAccuracyDrop: 1, maxRecallDrop: 1, minEvalImages: 1 });
    f.start();
    const run = await f.request('api').done;
    await f.stop();
    expect(run.status, run.reason ?? '').toBe('promoted');
    expect(run.labelsTrain + run.labelsEval).toBe(24);
    expect(promoted).toEqual([run.candidateVersion]);
    const active = JSON.parse(await readFile(path.join(modelsDir, 'ensemble.json'), 'utf8')) as EnsembleFile;
    expect(active.members).toEqual([{ name: 'torch', version: run.candidateVersion }]);
    const dir = path.join(modelsDir, 'torch', run.candidateVersion!);
    expect(readdirSync(dir).sort()).toEqual(['meta.json', 'model.onnx']);
    const meta = await readMeta(dir);
    expect(meta.parent).toBe('torch/v1');
    expect(meta.onnx).toEqual((await readMeta(path.join(modelsDir, 'torch', 'v1'))).onnx);
    expect(meta.training.finetune).toMatchObject({ backend: 'onnxruntime features', gate: { promoted: true } });
    expect(await verifyChecksums(dir, meta)).toEqual([]);

    // The daemon's classifier loads the promoted ensemble and classifies real images with it.
    const classifier = new Classifier({ ensembleFile: path.join(modelsDir, 'ensemble.json'), modelsDir, backend: 'onnx', workers: 1, maxBatch: 8, maxWaitMs: 2, topK: 3, logger: silentLogger() });
    await classifier.start();
    try {
      const image = fixtureImages()[0]!;
      const frame = await preprocessFrame({ path: 'x.jpg', relPath: 'x.jpg', sha256: image.sha256, bytes: image.bytes.length, arrivedAt: Date.now() }, image.bytes, { maxPixels: 25_000_000, inputs: classifier.inputs() });
      const result = await classifier.classify(frame);
      expect(result.ensembleVersion).toBe(run.candidateVersion);
      expect(meta.classes).toContain(result.label);
    } finally {
      await classifier.stop();
    }
  }, 120_000);

  it('is kept as a candidate when the gate says no, and the active ensemble stays', async () => {
    const f = finetuner({ minEvalImages: 1000 });
    f.start();
    const run = await f.request('api').done;
    await f.stop();
    expect(run.status, run.reason ?? '').toBe('rejected');
    expect(run.reason).toContain('evaluation images');
    expect((await registry.active())!.version).toBe('E1');
    expect(existsSync(path.join(modelsDir, 'candidates', `${run.candidateVersion}.json`))).toBe(true);
    expect(existsSync(path.join(modelsDir, 'torch', run.candidateVersion!, 'model.onnx'))).toBe(true);
    expect(promoted).toEqual([]);
  }, 120_000);
});
