// Issue 26, item 13: `models list` showed a fine-tuned member's 82–84% (on 62 gate images) beside
// its parent's 74–75% (on 3,662 held-out images) as if they were comparable. Every figure must
// carry the set it was measured on and its size; the parent's figure on the same gate images is
// recorded; the listing says when figures come from different sets. A real run (store, worker,
// registry) and the built CLI (run `npm run build` first).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMeta } from '../../src/classify/model-files.js';
import { defaults } from '../../src/config/config.js';
import { Finetuner } from '../../src/finetune/finetuner.js';
import type { FinetuneRun } from '../../src/finetune/runs.js';
import { ModelRegistry } from '../../src/registry/registry.js';
import { silentLogger } from '../../src/log.js';
import { fixtureImages } from '../helpers/images.js';
import { REPO_ROOT, saveTinyMember, shipStore, type ShipStore } from '../finetune/helpers.js';

const NEW = 'appendicularian_s_shape';
const KNOWN = [...new Set(fixtureImages().map((i) => i.label))].filter((c) => c !== NEW);
let ship: ShipStore;
let modelsDir = '';
let registry: ModelRegistry;
let run: FinetuneRun;

beforeAll(async () => {
  process.env.PLANKWATCH_CACHE_DIR = path.join(os.tmpdir(), 'pw-integrity-finetune-cache');
  const all = fixtureImages();
  ship = shipStore(all.map((image) => ({ image, predicted: image.label === NEW ? KNOWN[0]! : image.label, probability: 0.6 })), KNOWN);
  for (const i of all) ship.review.label({ sha256: i.sha256, action: 'correct', label: i.label, user: 'sci', newClass: true });
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pw-integrity-models-'));
  registry = new ModelRegistry({ modelsDir, ensembleFile: path.join(modelsDir, 'ensemble.json') });
  // The parent as the shipped members record it: measured on the held-out split of their data.
  await saveTinyMember(modelsDir, KNOWN, { metrics: { top1: 0.746, top5: 0.95, evaluatedOn: 3662, split: 'validation' }, split: '../../splits/5b6871bdcda4-s1-v15' });
  const f = new Finetuner({
    config: { ...defaults().finetune, enabled: false, epochs: 2, batchSize: 8, replayPerClass: 3, minNewClassLabels: 3, maxAccuracyDrop: 1, maxRecallDrop: 1, minEvalImages: 1 },
    repository: ship.store.finetuneRepository(),
    review: ship.review,
    registry,
    images: { watchDir: ship.watchDir, archiveDir: ship.archiveDir },
    onPromoted: async () => {},
    logger: silentLogger(),
  });
  f.start();
  run = await f.request('api').done;
  await f.stop();
}, 120_000);

afterAll(async () => {
  ship.cleanup();
  await rm(modelsDir, { recursive: true, force: true });
});

describe('comparable model figures (issue 26 item 13)', () => {
  it('a fine-tuned member records the set its figure was measured on, its size, and its parent\'s figure on the same images', async () => {
    expect(run.status, run.reason ?? '').toBe('promoted');
    const meta = await readMeta(path.join(modelsDir, 'tiny', run.candidateVersion!));
    expect(meta.metrics.evaluationSet).toBe(`fine-tuning gate of run ${run.id}`);
    expect(meta.metrics.evaluatedOn).toBe(run.gate!.evaluated);
    expect(typeof meta.metrics.top1).toBe('number');
    expect(typeof meta.metrics.parentTop1).toBe('number');
  });

  it('the registry names every member\'s evaluation set and size', async () => {
    const listing = await registry.list();
    const parent = listing.members.find((m) => m.version === 'v1')!;
    const child = listing.members.find((m) => m.version === run.candidateVersion)!;
    expect(parent.evaluation).toEqual({ set: 'holdout 5b6871bdcda4-s1-v15', size: 3662 });
    expect(child.evaluation).toEqual({ set: `fine-tuning gate of run ${run.id}`, size: run.gate!.evaluated });
  });

  it('`plankwatch models list` shows each figure with its set and size, the parent on the same images, and warns that the sets differ', () => {
    const config = path.join(modelsDir, 'plankwatch.yaml');
    writeFileSync(config, `classify:\n  modelsDir: ${JSON.stringify(modelsDir)}\n  ensemble: ${JSON.stringify(path.join(modelsDir, 'ensemble.json'))}\n`);
    const out = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/plankwatch.js'), 'models', 'list', '--config', config], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toContain('top1 74.6% on holdout 5b6871bdcda4-s1-v15 (3662 images)');
    const n = run.gate!.evaluated;
    expect(out.stdout).toMatch(new RegExp(`top1 \\d+\\.\\d% on fine-tuning gate of run ${run.id} \\(${n} images; parent tiny/v1 \\d+\\.\\d% on the same images\\)`));
    expect(out.stdout).toContain('measured on different evaluation sets');
  });
});
