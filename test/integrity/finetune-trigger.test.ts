// Issue 26, item 10: one confirmed label must not start a full fine-tune; replay must come from the
// ship's own frames and the shipped set, never a development folder; a stop during a run is a
// cancel, logged at info. Real store (SQLite file), real worker thread, real model registry, real
// NDSB fixture images, a real pino logger.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readMeta } from '../../src/classify/model-files.js';
import { defaults, type Config } from '../../src/config/config.js';
import { Finetuner } from '../../src/finetune/finetuner.js';
import { FinetuneRuns } from '../../src/finetune/runs.js';
import { splitPart } from '../../src/finetune/split.js';
import { ModelRegistry } from '../../src/registry/registry.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { fixtureImages, manyImages, type FixtureImage } from '../helpers/images.js';
import { captureLogger, saveTinyMember, shipStore, writeFolder, type ShipStore } from '../finetune/helpers.js';

const NEW = 'appendicularian_s_shape';
const KNOWN = [...new Set(fixtureImages().map((i) => i.label))].filter((c) => c !== NEW);
const HOUR = 3_600_000;

let ship: ShipStore;
let modelsDir = '';
let clock = Date.UTC(2026, 11, 1, 12, 0, 0);
const byClass = (images: FixtureImage[], cls: string) => images.filter((i) => i.label === cls);

function finetuner(over: Partial<Config['finetune']>, logger: Logger = silentLogger()): Finetuner {
  const config = { ...defaults().finetune, ...over };
  return new Finetuner({
    config,
    repository: ship.store.finetuneRepository(),
    review: ship.review,
    registry: new ModelRegistry({ modelsDir, ensembleFile: path.join(modelsDir, 'ensemble.json') }),
    images: { watchDir: ship.watchDir, archiveDir: ship.archiveDir },
    onPromoted: async () => {},
    logger,
    now: () => clock,
  });
}

function confirm(images: FixtureImage[]): void {
  for (const i of images) ship.review.label({ sha256: i.sha256, action: 'confirm', user: 'sci' });
}

const all = fixtureImages();
// Frames the scientists confirm: the first 3 of each known class.
const labelled = KNOWN.flatMap((c) => byClass(all, c).slice(0, 3));
// Frames the ensemble classified with high confidence: 2 of each of three classes, one of them in
// the gate slice by its hash (so never to be trained on), and one low-confidence frame per class.
const confident = ['acantharia_protist', 'chaetognath_other', 'detritus_other'].flatMap((c) => {
  const rest = byClass(all, c).slice(3);
  const evalOne = rest.find((i) => splitPart(i.sha256, 0.2) === 'eval');
  const trainTwo = rest.filter((i) => splitPart(i.sha256, 0.2) === 'train').slice(0, 2);
  return [...(evalOne ? [evalOne] : []), ...trainTwo];
});
const unsure = KNOWN.map((c) => byClass(all, c).at(-1)!).filter((i) => !confident.includes(i));

beforeEach(async () => {
  process.env.PLANKWATCH_CACHE_DIR = path.join(os.tmpdir(), 'pw-integrity-finetune-cache');
  ship = shipStore(
    [
      ...labelled.map((image) => ({ image, predicted: image.label, probability: 0.6 })),
      ...confident.map((image) => ({ image, predicted: image.label, probability: 0.97 })),
      ...unsure.map((image) => ({ image, predicted: image.label, probability: 0.55 })),
    ],
    KNOWN,
  );
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pw-integrity-models-'));
  await saveTinyMember(modelsDir, KNOWN);
  clock = Date.UTC(2026, 11, 1, 12, 0, 0);
});

afterEach(async () => {
  ship.cleanup();
  await rm(modelsDir, { recursive: true, force: true });
});

describe('fine-tuning trigger (issue 26 item 10)', () => {
  it('one confirmed label starts no run with the default settings, now or a day later', async () => {
    const f = finetuner({});
    f.start();
    try {
      confirm(labelled.slice(0, 1));
      f.check();
      expect(f.status().running).toBeNull();
      clock += 25 * HOUR;
      f.check();
      expect(f.status().running).toBeNull();
      expect(f.list()).toEqual([]);
    } finally {
      await f.stop();
    }
  });

  it('the label threshold waits for finetune.minIntervalHours after the previous run', async () => {
    new FinetuneRuns(ship.store.finetuneRepository()).finish(new FinetuneRuns(ship.store.finetuneRepository()).start('threshold', 'E1', 0, clock - HOUR), { status: 'rejected' }, clock - HOUR + 60_000);
    const f = finetuner({ minNewLabels: 5, minIntervalHours: 6, epochs: 1 });
    f.start();
    try {
      confirm(labelled);
      f.check();
      expect(f.status().running, 'a run started one hour after the previous one').toBeNull();
      clock += 5 * HOUR;
      f.check();
      expect(f.status().running?.trigger).toBe('threshold');
    } finally {
      await f.stop();
    }
  });
});

describe('fine-tuning replay (issue 26 item 10)', () => {
  it('replays the ship\'s own high-confidence frames (never gate-slice ones) and the shipped set; no development folder', async () => {
    // The shipped replay set: one (rotated, so distinct) image of each known class.
    const variants = (await manyImages(200)).filter((i) => i.name.startsWith('t1-'));
    const shipped = KNOWN.map((c) => byClass(variants, c)[0]!);
    writeFolder(path.join(modelsDir, 'reference', 'replay'), shipped);
    confirm(labelled);
    const f = finetuner({ enabled: false, epochs: 1, batchSize: 8, replayPerClass: 10 });
    f.start();
    const run = await f.request('api').done;
    await f.stop();
    expect(['promoted', 'rejected'], run.reason ?? '').toContain(run.status);
    const replay = run.members[0]!.replay;
    const eligible = confident.filter((i) => splitPart(i.sha256, 0.2) === 'train');
    expect(confident.length).toBeGreaterThan(eligible.length);
    expect(replay).toEqual({ frames: eligible.length, reference: shipped.length, folder: 0 });
    expect(run.members[0]!.replayImages).toBe(eligible.length + shipped.length);
    const meta = await readMeta(path.join(modelsDir, 'tiny', run.candidateVersion!));
    const text = JSON.stringify({ run, training: meta.training });
    expect(text).not.toContain('shared/data/ndsb');
    expect(text).not.toContain('ndsb/train');
  }, 120_000);
});

describe('fine-tuning cancel on stop (issue 26 item 10)', () => {
  it('a stop during a run is logged at info as a cancel: no error, no stack, and its labels still count as new', async () => {
    confirm(labelled);
    const { logger, lines } = captureLogger();
    // More epochs than any run could finish before the stop (headEpochs for heads trained on ONNX
    // features: milliseconds an epoch; 200 of them sometimes ended, rejected by the gate, before it).
    const f = finetuner({ enabled: false, epochs: 100_000, headEpochs: 100_000, batchSize: 4, replayPerClass: 0 }, logger);
    f.start();
    const { runId } = f.request('api');
    const deadline = Date.now() + 60_000;
    while (f.status().running?.progress == null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(f.status().running?.progress, 'the run never reported progress').not.toBeNull();
    await f.stop();
    const run = f.get(runId)!;
    expect(run.status).toBe('failed');
    expect(run.reason).toMatch(/^cancelled/);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => l.code === 'PW_E_FINETUNE_FAILED')).toEqual([]);
    const cancel = lines.find((l) => /cancelled/.test(l.msg));
    expect(cancel?.level).toBe(30);
    expect(cancel?.err).toBeUndefined();
    expect(f.status().newLabels).toBe(labelled.length);
  }, 120_000);
});
