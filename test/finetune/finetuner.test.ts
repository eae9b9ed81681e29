// The Finetuner as the daemon runs it, on a real store (24 fixture images classified and labelled,
// 12 of a class the member does not know),
// a real worker thread and a real model registry: skipped, promoted and rejected runs, the busy
// refusal, new classes held back until they have enough labels, and the recorded rows.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EnsembleFile, MemberMeta } from '../../src/classify/meta.js';
import { folderIO, readMeta, verifyChecksums, writeMeta } from '../../src/classify/model-files.js';
import { defaults, type Config } from '../../src/config/config.js';
import { buildModel } from '../../src/learn/architectures.js';
import { Finetuner } from '../../src/finetune/finetuner.js';
import { ModelRegistry } from '../../src/registry/registry.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { fixtureImages } from '../helpers/images.js';
import { seedStore, type Seeded } from '../review/helpers.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/ndsb');
let s: Seeded;
let modelsDir = '';
let registry: ModelRegistry;
const promoted: string[] = [];

async function saveMember(classes: string[]): Promise<void> {
  await tf.setBackend('cpu');
  const model = buildModel('pw-tiny-32', { numClasses: classes.length, seed: 2 });
  const dir = path.join(modelsDir, 'tiny', 'v1');
  await model.save(folderIO(dir));
  model.dispose();
  const meta: MemberMeta = {
    name: 'tiny',
    version: 'v1',
    classes,
    input: { size: 32, channels: 1 },
    preprocessing: DEFAULT_PREPROCESS,
    architecture: 'pw-tiny-32',
    training: { command: 'test', seed: 2, dataFingerprint: 'none' },
    metrics: {},
    parent: null,
    createdAt: '2026-11-28T00:00:00Z',
  };
  await writeMeta(dir, meta);
  const ensemble: EnsembleFile = { version: 'E1', voting: 'soft', members: [{ name: 'tiny', version: 'v1' }] };
  await writeFile(path.join(modelsDir, 'ensemble.json'), JSON.stringify(ensemble));
}

function finetuner(over: Partial<Config['finetune']>): Finetuner {
  const config = { ...defaults().finetune, enabled: false, replayData: FIXTURES, replayPerClass: 3, epochs: 2, batchSize: 8, evalFraction: 0.3, minNewClassLabels: 3, ...over };
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
  process.env.PLANKWATCH_CACHE_DIR = path.join(os.tmpdir(), 'pw-finetuner-cache');
  s = seedStore(24, ['acantharia_protist', 'appendicularian_s_shape', 'chaetognath_other']);
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pw-finetuner-models-'));
  registry = new ModelRegistry({ modelsDir, ensembleFile: path.join(modelsDir, 'ensemble.json') });
  const classes = [...new Set(fixtureImages().map((i) => i.label))].filter((c) => c !== 'appendicularian_s_shape');
  await saveMember(classes);
  promoted.length = 0;
});
afterEach(() => s.cleanup());

/** Label every seeded frame with its true fixture class. */
function labelAll(): void {
  const truth = new Map(fixtureImages().map((i) => [i.sha256, i.label]));
  for (const sha of s.shas) s.review.label({ sha256: sha, action: 'correct', label: truth.get(sha)!, user: 'sci', newClass: true });
}

describe('Finetuner', () => {
  it('skips a run without validated labels', async () => {
    const f = finetuner({});
    f.start();
    const run = await f.request('api').done;
    expect(run.status).toBe('skipped');
    expect(run.reason).toBe('no validated labels yet');
    await f.stop();
  });

  it('trains a candidate in a worker, passes a lenient gate, promotes it atomically and records the run', async () => {
    labelAll();
    const f = finetuner({ maxAccuracyDrop: 1, maxRecallDrop: 1, minEvalImages: 1 });
    f.start();
    const { runId, done } = f.request('api');
    expect(() => f.request('api')).toThrow(/PW_E_FINETUNE_BUSY/);
    expect(f.status().running?.runId).toBe(runId);
    const run = await done;
    expect(run.status, run.reason ?? '').toBe('promoted');
    expect(run.baseVersion).toBe('E1');
    expect(run.labelsTrain + run.labelsEval).toBe(24);
    expect(run.labelsEval).toBeGreaterThan(0);
    // appendicularian_s_shape was unknown to the member: its head grew for it.
    expect(run.newClasses).toEqual(['appendicularian_s_shape']);
    expect(run.gate!.evaluated).toBe(run.labelsEval);
    expect(promoted).toEqual([run.candidateVersion]);
    const active = JSON.parse(await readFile(path.join(modelsDir, 'ensemble.json'), 'utf8')) as EnsembleFile;
    expect(active.version).toBe(run.candidateVersion);
    const dir = path.join(modelsDir, 'tiny', run.candidateVersion!);
    const meta = await readMeta(dir);
    expect(meta.parent).toBe('tiny/v1');
    expect(meta.classes.at(-1)).toBe('appendicularian_s_shape');
    expect(await verifyChecksums(dir, meta)).toEqual([]);
    expect(f.list()[0]!.id).toBe(runId);
    expect(f.status().running).toBeNull();
    // The split is frozen: the same frames are held out next time.
    const again = await f.request('manual').done;
    expect(again.labelsEval).toBe(run.labelsEval);
    await f.stop();
  }, 120_000);

  it('rejects through the gate and keeps the active ensemble, saving the candidate', async () => {
    labelAll();
    const f = finetuner({ minEvalImages: 1000 });
    f.start();
    const run = await f.request('api').done;
    expect(run.status).toBe('rejected');
    expect(run.reason).toContain('evaluation images');
    expect((await registry.active())!.version).toBe('E1');
    expect(existsSync(path.join(modelsDir, 'candidates', `${run.candidateVersion}.json`))).toBe(true);
    expect(promoted).toEqual([]);
    await f.stop();
  }, 120_000);

  it('holds a new class back until it has enough training labels', async () => {
    labelAll();
    const f = finetuner({ minNewClassLabels: 50, maxAccuracyDrop: 1, maxRecallDrop: 1, minEvalImages: 1 });
    f.start();
    const run = await f.request('threshold').done;
    expect(run.newClasses).toEqual([]);
    expect(run.warnings.join(' ')).toContain('appendicularian_s_shape');
    await f.stop();
  }, 120_000);
});
