// Fine-tuning on board, end to end, on real NDSB images: a base member trained here on six
// classes; the daemon (a child process, compiled dist/) classifies about 50 images of a seventh
// class, a scientist corrects them through the JSON API, a run is requested over the API, the
// gate passes, the candidate is promoted and hot-swapped (MQTT `model` announces it), and the new
// class is recognised on images it never saw while the old classes keep their accuracy. Then
// `plankwatch models rollback` from the CLI is noticed by the running daemon.
// Also the poisoning case: 20% of one class's confirmed labels flipped to another class.
// Needs ../shared/data/ndsb/train (or PLANKWATCH_NDSB_DIR); skipped with a message without it.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { readMeta, verifyChecksums } from '../../src/classify/model-files.js';
import { defaults } from '../../src/config/config.js';
import { initBackend } from '../../src/engine/backend.js';
import { decide } from '../../src/finetune/gate.js';
import { jobSettings, runFinetuneJob, type JobLabel } from '../../src/finetune/job.js';
import { splitPart } from '../../src/finetune/split.js';
import { daemonDirs, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { sha256 } from '../helpers/images.js';
import { classFiles, makeFolder, ndsbTrainDir, REPO_ROOT, scoreEnsemble, trainBase } from './helpers.js';

const NDSB = ndsbTrainDir();
const BASE = ['acantharia_protist', 'appendicularian_s_shape', 'chaetognath_other', 'copepod_cyclopoid_oithona_eggs', 'hydromedusae_solmaris', 'trichodesmium_puff'];
const NEW = 'echinoderm_larva_seastar_brachiolaria';
const N_BASE = 350;
const N_GATE = 150;
const N_TEST = 60;
const CONFIRMED = 50;
/** A six-class member replays more of each class than the 121-class default would. */
const REPLAY_PER_CLASS = 200;

if (!NDSB) {
  process.stderr.write('test/finetune/e2e.test.ts: skipped: no NDSB training images at ../shared/data/ndsb/train (set PLANKWATCH_NDSB_DIR)\n');
}

interface Setup {
  tmp: string;
  modelsDir: string;
  baseDir: string;
  gateDir: string;
  base: EnsembleFile;
  testOld: { file: string; label: string }[];
  newFiles: string[];
  before: { oldAccuracy: number; newRecall: number };
}

let setup: Setup;
const figures: Record<string, unknown> = {};

describe.skipIf(!NDSB)('fine-tuning on board (NDSB)', () => {
  beforeAll(async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-finetune-e2e-'));
    process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
    await initBackend('wasm');
    const files = Object.fromEntries(BASE.map((c) => [c, classFiles(NDSB!, c)]));
    const baseDir = await makeFolder(path.join(tmp, 'base'), Object.fromEntries(BASE.map((c) => [c, files[c]!.slice(0, N_BASE)])));
    const gateDir = await makeFolder(path.join(tmp, 'gate'), Object.fromEntries(BASE.map((c) => [c, files[c]!.slice(N_BASE, N_BASE + N_GATE)])));
    const testOld = BASE.flatMap((c) => files[c]!.slice(N_BASE + N_GATE, N_BASE + N_GATE + N_TEST).map((f) => ({ file: f, label: c })));
    const modelsDir = path.join(tmp, 'models');
    const t0 = performance.now();
    const base = await trainBase({ data: baseDir, modelsDir, member: 'tiny', version: 'v1', epochs: 25, seed: 1 });
    figures.baseTrainSeconds = Math.round((performance.now() - t0) / 100) / 10;
    const newFiles = classFiles(NDSB!, NEW);
    const oldScore = await scoreEnsemble(modelsDir, base, testOld);
    const newScore = await scoreEnsemble(modelsDir, base, newFiles.slice(100, 200).map((f) => ({ file: f, label: NEW })));
    setup = { tmp, modelsDir, baseDir, gateDir, base, testOld, newFiles, before: { oldAccuracy: oldScore.accuracy, newRecall: newScore.perClass[NEW]?.recall ?? 0 } };
  }, 600_000);

  afterAll(() => {
    process.stderr.write(`fine-tuning figures: ${JSON.stringify(figures)}\n`);
  });

  it('learns a new class from ~50 confirmed labels through the daemon, promotes it live, and rolls back from the CLI', async () => {
    const { modelsDir } = setup;
    const port = await freePort();
    const dirs = daemonDirs({
      classify: { ensemble: path.join(modelsDir, 'ensemble.json'), modelsDir, workers: 1 },
      publish: { embeddedPort: port },
      ingest: { stableMs: 100 },
      // The test's own small network, trained for seconds in beforeAll, loses a few images of the
      // old classes to the new one while it learns it (the gate measures the old classes apart:
      // 0.8 points on the 900 gate images here, as on the test images below): the gate here allows
      // one point, the bound this test holds the old classes to below (the default allows none;
      // gate.test.ts and test/integrity/finetune-gate.test.ts test the rules themselves).
      finetune: { enabled: true, replayPerClass: REPLAY_PER_CLASS, minNewLabels: 0, scheduleHours: 0, checkIntervalS: 1, evalData: setup.gateDir, replayData: setup.baseDir, pollEnsembleMs: 200, maxAccuracyDrop: 0.01 },
    });
    const daemon: DaemonProcess = startDaemon(dirs.config, { PLANKWATCH_CACHE_DIR: path.join(setup.tmp, 'cache-daemon'), PLANKWATCH_LOG_LEVEL: 'info' });
    const models: { ensembleVersion: string }[] = [];
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 200 });
    const connected = new Promise<void>((resolve) => client.once('connect', () => resolve()));
    try {
      const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 120_000);
      const api = ready.http as string;
      client.on('message', (_topic, payload) => models.push(JSON.parse(payload.toString()) as { ensembleVersion: string }));
      await connected;
      await client.subscribeAsync('plankwatch/test-cam/model');

      // About 50 images of a class the ensemble does not know arrive and are classified (wrongly).
      const confirmed = setup.newFiles.slice(0, CONFIRMED);
      for (const f of confirmed) copyFileSync(f, path.join(dirs.incoming, path.basename(f)));
      const shas = new Set(confirmed.map((f) => sha256(readFileSync(f))));
      let queue: { sha256: string; prediction: { label: string } }[] = [];
      await waitFor(async () => {
        const res = (await (await fetch(`${api}/api/review/queue?limit=500`)).json()) as { items: typeof queue };
        queue = res.items.filter((i) => shas.has(i.sha256));
        return queue.length === CONFIRMED;
      }, 120_000, 'the new-class images to be classified');
      expect(queue.every((i) => i.prediction.label !== NEW)).toBe(true);

      // A scientist corrects each to the new class through the JSON API.
      for (const item of queue) {
        const res = await fetch(`${api}/api/labels`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sha256: item.sha256, action: 'correct', label: NEW, user: 'scientist', newClass: true }),
        });
        expect(res.status).toBe(200);
      }

      // Fine-tuning is requested; classification goes on meanwhile.
      const started = await fetch(`${api}/api/finetune/run`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      expect(started.status).toBe(202);
      const { runId } = (await started.json()) as { runId: number };
      expect((await fetch(`${api}/api/finetune/run`, { method: 'POST', headers: { 'content-type': 'application/json' } })).status).toBe(409);
      const during = setup.testOld.slice(0, 30);
      for (const [i, t] of during.entries()) copyFileSync(t.file, path.join(dirs.incoming, `during-${i}-${path.basename(t.file)}`));
      type Run = { status: string; candidateVersion: string; reason: string; labelsTrain: number; labelsEval: number; newClasses: string[]; gate: { accuracy: { before: number; after: number }; evaluated: number; classes: { name: string; before: number; after: number; support: number }[] }; seconds: number; warnings: string[] };
      let run: Run | undefined;
      await waitFor(async () => {
        run = (await (await fetch(`${api}/api/finetune/runs/${runId}`)).json()) as Run;
        return run.status !== 'running';
      }, 600_000, 'the fine-tuning run to finish');
      figures.run = { status: run!.status, reason: run!.reason, labelsTrain: run!.labelsTrain, labelsEval: run!.labelsEval, seconds: run!.seconds, gate: { accuracy: run!.gate?.accuracy, evaluated: run!.gate?.evaluated } };
      expect(run!.status, run!.reason).toBe('promoted');
      expect(run!.newClasses).toEqual([NEW]);
      expect(run!.labelsTrain + run!.labelsEval).toBe(CONFIRMED);
      const candidate = run!.candidateVersion;

      // The registry: atomic switch done, previous ensemble kept, member with its parent and checksums.
      const active = JSON.parse(readFileSync(path.join(modelsDir, 'ensemble.json'), 'utf8')) as EnsembleFile;
      expect(active.version).toBe(candidate);
      expect(existsSync(path.join(modelsDir, 'ensembles', `${setup.base.version}.json`))).toBe(true);
      const memberDir = path.join(modelsDir, 'tiny', candidate);
      const meta = await readMeta(memberDir);
      expect(meta.parent).toBe('tiny/v1');
      expect(meta.classes).toContain(NEW);
      expect(await verifyChecksums(memberDir, meta)).toEqual([]);

      // The daemon swapped without restarting and announced it on MQTT.
      await waitFor(async () => models.some((m) => m.ensembleVersion === candidate), 30_000, 'the model topic to announce the candidate');

      // Figures on images never used: the new class's recall, the old classes' accuracy.
      const oldAfter = await scoreEnsemble(modelsDir, active, setup.testOld);
      const newAfter = await scoreEnsemble(modelsDir, active, setup.newFiles.slice(100, 200).map((f) => ({ file: f, label: NEW })));
      figures.newClassRecall = { before: setup.before.newRecall, after: newAfter.perClass[NEW]?.recall };
      figures.oldClassesAccuracy = { before: setup.before.oldAccuracy, after: oldAfter.accuracy, images: setup.testOld.length };
      expect(newAfter.perClass[NEW]!.recall).toBeGreaterThanOrEqual(0.7);
      expect(oldAfter.accuracy).toBeGreaterThanOrEqual(setup.before.oldAccuracy - 0.01);

      // The live daemon now names the new class on unseen images of it; no frame was dropped.
      const unseen = setup.newFiles.slice(200, 220);
      for (const f of unseen) copyFileSync(f, path.join(dirs.incoming, path.basename(f)));
      const unseenShas = new Set(unseen.map((f) => sha256(readFileSync(f))));
      let live: { sha256: string; prediction: { label: string; ensembleVersion: string } }[] = [];
      await waitFor(async () => {
        const res = (await (await fetch(`${api}/api/review/queue?limit=500`)).json()) as { items: typeof live };
        live = res.items.filter((i) => unseenShas.has(i.sha256));
        return live.length === unseen.length;
      }, 120_000, 'the unseen images to be classified').catch((err: unknown) => {
        // Say what the daemon was doing: its last log lines and whether it still runs.
        const tail = daemon.logs.slice(-25).map((l) => JSON.stringify(l)).join('\n');
        throw new Error(`${String(err)}; ${live.length}/${unseen.length} seen; daemon exit code ${daemon.child.exitCode}; last logs:\n${tail}`);
      });
      const liveHits = live.filter((i) => i.prediction.label === NEW).length;
      figures.liveNewClassHits = `${liveHits}/${unseen.length}`;
      expect(live.every((i) => i.prediction.ensembleVersion === candidate)).toBe(true);
      expect(liveHits).toBeGreaterThanOrEqual(12);
      const runs = (await (await fetch(`${api}/api/finetune/runs`)).json()) as { runs: { id: number }[]; running: unknown };
      expect(runs.runs[0]!.id).toBe(runId);
      expect(runs.running).toBeNull();
      const all = (await (await fetch(`${api}/api/review/queue?limit=500&status=predicted,validated`)).json()) as { total: number };
      expect(all.total).toBe(CONFIRMED + during.length + unseen.length);

      // `plankwatch models rollback` from the CLI: the running daemon notices and swaps back.
      const out = execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin/plankwatch.js'), 'models', 'rollback', '--config', dirs.config], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect(out).toContain(setup.base.version);
      await waitFor(async () => models.at(-1)?.ensembleVersion === setup.base.version, 30_000, 'the model topic to announce the rollback');
      const list = execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin/plankwatch.js'), 'models', 'list', '--json', '--config', dirs.config], { cwd: REPO_ROOT, encoding: 'utf8' });
      const listing = JSON.parse(list) as { active: EnsembleFile; history: { version: string; action: string }[] };
      expect(listing.active.version).toBe(setup.base.version);
      expect(listing.history.map((h) => h.action)).toEqual(['finetune', 'rollback']);
    } finally {
      client.end(true);
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
  }, 1_200_000);

  it('poisoning: 20% of one class\'s confirmed labels flipped to another class is caught by the gate or stays within its bounds', async () => {
    const { modelsDir } = setup;
    const c = defaults().finetune;
    const victim = 'acantharia_protist';
    const into = 'hydromedusae_solmaris';
    const files = classFiles(NDSB!, victim).slice(N_BASE + N_GATE + N_TEST, N_BASE + N_GATE + N_TEST + 50);
    const labels: JobLabel[] = files.map((f, i) => ({ sha256: sha256(readFileSync(f)), label: i % 5 === 0 ? into : victim, file: f }));
    const train = labels.filter((l) => splitPart(l.sha256, c.evalFraction) === 'train');
    const evalLabels = labels.filter((l) => splitPart(l.sha256, c.evalFraction) === 'eval');
    mkdirSync(path.join(setup.tmp, 'poison'), { recursive: true });
    const result = await runFinetuneJob({
      runId: 99,
      modelsDir,
      ensemble: setup.base,
      version: 'poisoned',
      train,
      evalLabels,
      evalData: setup.gateDir,
      replayData: setup.baseDir,
      seed: 99,
      ...jobSettings(c),
      replayPerClass: REPLAY_PER_CLASS,
      maxMinutes: 0,
      backend: 'wasm',
      niceness: 0,
    });
    const decision = decide(
      result.evaluation.before,
      result.evaluation.after,
      { maxAccuracyDrop: c.maxAccuracyDrop, maxRecallDrop: c.maxRecallDrop, minClassExamples: c.minClassExamples, minEvalImages: c.minEvalImages },
      result.evaluation.oldClasses,
    );
    const victimRecall = decision.classes.find((x) => x.name === victim)!;
    figures.poisoning = { promote: decision.promote, reason: decision.reason, accuracy: decision.accuracy, victimRecall: { before: victimRecall.before, after: victimRecall.after } };
    if (decision.promote) {
      // Within the gate's bounds: accuracy did not drop and no checked class lost over 2 points.
      expect(decision.accuracy.after).toBeGreaterThanOrEqual(decision.accuracy.before);
      for (const cls of decision.classes) if (cls.checked) expect(cls.after).toBeGreaterThanOrEqual(cls.before - 0.02 - 1e-9);
    } else {
      expect(decision.failures.length).toBeGreaterThan(0);
    }
  }, 600_000);
});

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
