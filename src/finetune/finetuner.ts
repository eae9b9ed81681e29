// Fine-tuning on board, as a daemon part: decides when to run (enough new validated labels and
// enough time since the last run, or the schedule, or a request), prepares the job (labels and
// their images, the frozen evaluation part, the ship's own high-confidence frames and the shipped
// reference set for replay), runs it in a worker thread while classification goes on, applies the
// promotion gate, and on a pass promotes the candidate atomically and hands it to the daemon for a
// hot swap. Every run is recorded with its numbers and decision; a failure, a rejection or a stop
// leaves the active ensemble.
import type { CameraProfile } from '../preprocess/index.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { EnsembleFile } from '../classify/meta.js';
import type { Config } from '../config/config.js';
import { PlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ReviewStore } from '../review/review-store.js';
import type { ValidatedLabel } from '../review/review-types.js';
import type { FinetuneRepository } from '../store/index.js';
import { readMeta, writeMeta } from '../classify/model-files.js';
import { ImageArchive, ingestRoots } from '../ingest/image-archive.js';
import type { Part } from '../types.js';
import type { ModelRegistry } from '../registry/registry.js';
import { defaultVersion } from '../learn/train-run.js';
import { decide, type GateDecision, type GateRules } from './gate.js';
import { jobSettings, type FinetuneJob, type FinetuneJobResult, type JobLabel, type JobProgress } from './job.js';
import { confidentFrames } from './replay-frames.js';
import { FinetuneRuns, type FinetuneRun, type RunTrigger } from './runs.js';
import { JobCancelled, startFinetuneWorker, type RunningJob } from './worker-client.js';

export type FinetuneConfig = Config['finetune'];

export interface FinetunerOptions {
  config: FinetuneConfig;
  /** The store's fine-tuning tables (`store.finetuneRepository()`). */
  repository: FinetuneRepository;
  review: ReviewStore;
  registry: ModelRegistry;
  /** Where labelled frames' images are looked for (watch folder, then archive). */
  images: { watchDir: string; archiveDir: string };
  /** The camera (config `camera:`): how the ship's own frames are brought to the canonical form, recorded in new versions. */
  camera?: CameraProfile;
  /** Called once a candidate has been promoted (ensemble.json replaced): make it the live one. */
  onPromoted: (ensemble: EnsembleFile) => Promise<void>;
  logger: Logger;
  now?: () => number;
}

export interface FinetuneStatus {
  running: { runId: number; trigger: RunTrigger; startedAt: number; progress: JobProgress | null } | null;
  /** Validated labels since the last finished run. */
  newLabels: number;
}

const HOUR_MS = 3_600_000;

/** The extra replay folder (finetune.replayData), or null: there is no default folder. */
export function replayDataDir(config: FinetuneConfig): string | null {
  return config.replayData || null;
}

/**
 * The shipped reference set: finetune.referenceData, else the first `reference` folder of the
 * model folders (classify.modelsDir, then classify.baseModelsDir) that has one.
 */
export function referenceDataDir(config: FinetuneConfig, modelsDirs: readonly string[]): string {
  if (config.referenceData) return config.referenceData;
  const dirs = modelsDirs.map((d) => path.join(d, 'reference'));
  return dirs.find((d) => existsSync(d)) ?? dirs[0]!;
}

export class Finetuner implements Part {
  readonly name = 'finetune';
  private readonly opts: FinetunerOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private runs: FinetuneRuns | null = null;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private current: { runId: number; trigger: RunTrigger; startedAt: number; progress: JobProgress | null; job: RunningJob | null; done: Promise<FinetuneRun> } | null = null;
  private stopping = false;
  private checkSoon: NodeJS.Timeout | null = null;

  constructor(options: FinetunerOptions) {
    this.opts = options;
    this.log = options.logger;
    this.now = options.now ?? Date.now;
  }

  /** Prepare the tables' statements, close runs a crash left open, start the trigger checks. */
  start(): void {
    const runs = new FinetuneRuns(this.opts.repository);
    runs.closeInterrupted(this.now());
    this.runs = runs;
    if (!this.opts.config.enabled) return;
    this.timer = setInterval(() => this.check(), this.opts.config.checkIntervalS * 1000);
    this.timer.unref();
    // A label write asks for a check soon after (never inside the label's transaction).
    this.unsubscribe = this.opts.review.onLabelChanged(() => {
      if (this.checkSoon || this.stopping) return;
      this.checkSoon = setTimeout(() => {
        this.checkSoon = null;
        this.check();
      }, 200);
      this.checkSoon.unref();
    });
  }

  /** Stop the checks; a run in progress is cancelled (its candidate is not promoted). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.checkSoon) clearTimeout(this.checkSoon);
    this.unsubscribe?.();
    const current = this.current;
    if (current) {
      await current.job?.cancel();
      await current.done.catch(() => undefined);
    }
  }

  status(): FinetuneStatus {
    const c = this.current;
    return {
      running: c ? { runId: c.runId, trigger: c.trigger, startedAt: c.startedAt, progress: c.progress } : null,
      newLabels: this.newLabelCount(),
    };
  }

  list(limit = 50): FinetuneRun[] {
    return this.table().list(limit);
  }

  get(id: number): FinetuneRun | undefined {
    return this.table().get(id);
  }

  /**
   * Start a run now, in the background. Returns its id and a promise of its final record.
   * Throws PW_E_FINETUNE_BUSY while another run is in progress.
   */
  request(trigger: RunTrigger): { runId: number; done: Promise<FinetuneRun> } {
    if (this.current) throw new PlankwatchError('PW_E_FINETUNE_BUSY', `Run ${this.current.runId} started at ${new Date(this.current.startedAt).toISOString()}.`);
    if (this.stopping) throw new PlankwatchError('PW_E_FINETUNE_BUSY', 'The daemon is stopping.');
    const runs = this.table();
    const lastEventId = this.opts.review.validatedCounts().lastEventId;
    const startedAt = this.now();
    const runId = runs.start(trigger, 'pending', lastEventId, startedAt);
    const entry: NonNullable<Finetuner['current']> = { runId, trigger, startedAt, progress: null, job: null, done: Promise.resolve(undefined as never) };
    this.current = entry;
    entry.done = this.run(entry, lastEventId).finally(() => {
      this.current = null;
    });
    return { runId, done: entry.done };
  }

  /**
   * The threshold and schedule check (the timer's). Nothing starts sooner than
   * finetune.minIntervalHours after the previous run; then a run starts on finetune.minNewLabels
   * new labels, or on the schedule: finetune.scheduleHours after the previous run (before the
   * first one, after the oldest new label) once finetune.scheduleMinLabels came in.
   */
  check(): void {
    if (this.current || this.stopping || !this.opts.config.enabled) return;
    const c = this.opts.config;
    try {
      const fresh = this.newLabelCount();
      if (fresh === 0) return;
      const now = this.now();
      const last = this.table().last();
      if (last && now < last.startedAt + c.minIntervalHours * HOUR_MS) return;
      if (c.minNewLabels > 0 && fresh >= c.minNewLabels) {
        this.log.info({ newLabels: fresh, threshold: c.minNewLabels }, 'fine-tuning: enough new validated labels');
        this.request('threshold');
        return;
      }
      if (c.scheduleHours > 0 && fresh >= c.scheduleMinLabels) {
        const since = last?.startedAt ?? this.oldestNewLabelAt() ?? now;
        if (now >= since + c.scheduleHours * HOUR_MS) {
          this.log.info({ newLabels: fresh, scheduleHours: c.scheduleHours }, 'fine-tuning: scheduled run');
          this.request('schedule');
        }
      }
    } catch (err) {
      this.log.error({ err, code: 'PW_E_INTERNAL' }, 'fine-tuning check failed');
    }
  }

  private table(): FinetuneRuns {
    if (!this.runs) this.runs = new FinetuneRuns(this.opts.repository);
    return this.runs;
  }

  private newLabelCount(): number {
    return this.opts.review.validatedCounts({ sinceEventId: this.table().lastUsedEventId() }).total;
  }

  /** When the oldest label not yet used by a completed run was validated. */
  private oldestNewLabelAt(): number | undefined {
    return this.opts.review.validatedLabels(this.table().lastUsedEventId(), 1)[0]?.at;
  }

  private async run(entry: NonNullable<Finetuner['current']>, lastEventId: number): Promise<FinetuneRun> {
    const runs = this.table();
    const c = this.opts.config;
    const { runId } = entry;
    const t0 = performance.now();
    const warnings: string[] = [];
    try {
      const active = await this.opts.registry.active();
      if (!active) throw new PlankwatchError('PW_E_FINETUNE_FAILED', `No active ensemble at ${this.opts.registry.ensembleFile}.`);
      runs.setBaseVersion(runId, active.version);

      // Labels: all current validated labels up to this run's event id, split train/eval for good.
      const labels = this.opts.review.validatedLabels().filter((l) => l.eventId <= lastEventId);
      const parts = runs.assignParts(labels.map((l) => l.sha256), c.evalFraction, this.now());
      const { found, missing } = await this.resolveImages(labels);
      if (missing > 0) warnings.push(`${missing} validated frame(s) have no image on disk any more (ingest.onProcessed "delete"?) and were left out`);
      const known = new Set<string>();
      for (const m of active.members) for (const cls of (await readMeta(path.join(this.opts.registry.modelsDir, m.name, m.version))).classes) known.add(cls);
      let train = found.filter((l) => parts.get(l.sha256) === 'train');
      let evalLabels = found.filter((l) => parts.get(l.sha256) === 'eval');
      const newCounts = new Map<string, number>();
      for (const l of train) if (!known.has(l.label)) newCounts.set(l.label, (newCounts.get(l.label) ?? 0) + 1);
      const tooFew = [...newCounts].filter(([, n]) => n < c.minNewClassLabels).map(([cls]) => cls);
      if (tooFew.length > 0) {
        const drop = new Set(tooFew);
        warnings.push(
          `new class(es) ${tooFew.map((t) => `${t} (${newCounts.get(t)})`).join(', ')} have fewer than finetune.minNewClassLabels (${c.minNewClassLabels}) training labels: not added yet`,
        );
        train = train.filter((l) => !drop.has(l.label));
        evalLabels = evalLabels.filter((l) => !drop.has(l.label));
      }
      const newClasses = [...newCounts.keys()].filter((cls) => !tooFew.includes(cls)).sort();
      if (train.length === 0) {
        const reason = labels.length === 0 ? 'no validated labels yet' : 'no validated label with an image on disk to train on';
        runs.finish(runId, { status: 'skipped', reason, warnings, labelsEval: evalLabels.length, seconds: (performance.now() - t0) / 1000 }, this.now());
        this.log.info({ runId, reason }, `fine-tuning run ${runId} skipped: ${reason}`);
        return runs.get(runId)!;
      }

      // Replay: the ship's own high-confidence frames of the classes the ensemble knows (never one
      // of the gate slice), the shipped reference set, and the optional folder.
      const reference = referenceDataDir(c, this.opts.registry.searchPath);
      const replayFolder = replayDataDir(c);
      const confident = confidentFrames(this.opts.repository, {
        classes: [...known],
        perClass: c.replayPerClass,
        minProbability: c.replayMinProbability,
        evalFraction: c.evalFraction,
      });
      const replayFrames = (await this.resolveImages(confident)).found;
      runs.assignParts(replayFrames.map((f) => f.sha256), c.evalFraction, this.now());
      if (replayFrames.length === 0 && !existsSync(path.join(reference, 'replay')) && !(replayFolder && existsSync(replayFolder))) {
        this.log.warn(
          { code: 'PW_E_FINETUNE_NO_REPLAY', referenceData: reference, replayData: replayFolder },
          'fine-tuning: no replay images (no high-confidence frames on board yet, no shipped reference set); training on validated labels alone',
        );
      }
      const version = `${defaultVersion(new Date(this.now()))}-ft${runId}`;
      const job: FinetuneJob = {
        runId,
        modelsDir: this.opts.registry.modelsDir,
        ensemble: active,
        version,
        train,
        evalLabels,
        evalData: c.evalData || null,
        referenceData: reference,
        replayFrames,
        replayData: replayFolder,
        ...(this.opts.camera ? { camera: this.opts.camera } : {}),
        seed: runId,
        ...jobSettings(c),
      };
      this.log.info(
        { runId, trigger: entry.trigger, base: active.version, candidate: version, trainLabels: train.length, evalLabels: evalLabels.length, newClasses, replayFrames: replayFrames.length, referenceData: reference, replayData: replayFolder },
        `fine-tuning run ${runId} started`,
      );
      if (this.stopping) throw new JobCancelled();
      const running = startFinetuneWorker(job, {
        onProgress: (p) => {
          entry.progress = p;
          this.log.debug({ runId, ...p }, 'fine-tuning progress');
        },
        onLog: (line) => this.log.debug({ runId }, line),
      });
      entry.job = running;
      const result = await running.result;
      entry.job = null;
      warnings.push(...result.warnings);
      return await this.conclude(runId, active, result, { train: train.length, eval: evalLabels.length, newClasses, warnings, t0 });
    } catch (err) {
      if (err instanceof JobCancelled || this.stopping) {
        // A stop (SIGTERM, the part stopping) ends the run on purpose: no error. Its labels are
        // not used up; the run comes again when next due.
        const reason = 'cancelled: the daemon stopped during the run';
        runs.finish(runId, { status: 'failed', reason, warnings, seconds: (performance.now() - t0) / 1000 }, this.now());
        this.log.info({ runId }, `fine-tuning run ${runId} cancelled: the daemon is stopping; the active ensemble stays`);
        return runs.get(runId)!;
      }
      const reason = err instanceof Error ? err.message : String(err);
      runs.finish(runId, { status: 'failed', reason, warnings, seconds: (performance.now() - t0) / 1000 }, this.now());
      this.log.error({ err, code: 'PW_E_FINETUNE_FAILED', runId }, `fine-tuning run ${runId} failed: ${reason}; the active ensemble stays`);
      return runs.get(runId)!;
    }
  }

  private async conclude(
    runId: number,
    active: EnsembleFile,
    result: FinetuneJobResult,
    info: { train: number; eval: number; newClasses: string[]; warnings: string[]; t0: number },
  ): Promise<FinetuneRun> {
    const runs = this.table();
    const c = this.opts.config;
    const rules: GateRules = { maxAccuracyDrop: c.maxAccuracyDrop, maxRecallDrop: c.maxRecallDrop, minClassExamples: c.minClassExamples, minEvalImages: c.minEvalImages };
    const decision = decide(result.evaluation.before, result.evaluation.after, rules, result.evaluation.oldClasses);
    const common = {
      candidateVersion: result.candidate.version,
      labelsTrain: info.train,
      labelsEval: info.eval,
      newClasses: info.newClasses,
      members: result.members,
      gate: { ...decision, evaluated: result.evaluation.count, sets: result.evaluation.sets },
      warnings: info.warnings,
    };
    const acc = {
      before: round(decision.accuracy.before),
      after: round(decision.accuracy.after),
      evaluated: result.evaluation.count,
      oldClasses: { before: round(decision.oldClasses.before), after: round(decision.oldClasses.after), evaluated: decision.oldClasses.count },
    };
    if (!decision.promote || this.stopping) {
      await this.opts.registry.saveCandidate(result.candidate);
      const reason = this.stopping ? 'the daemon stopped before promotion; the candidate is kept' : decision.reason;
      await this.recordGate(result, this.stopping ? { verdict: 'stopped', promoted: false, reason } : { verdict: decision.verdict, promoted: false, reason });
      runs.finish(runId, { ...common, status: 'rejected', reason, seconds: (performance.now() - info.t0) / 1000 }, this.now());
      const fields = { runId, candidate: result.candidate.version, accuracy: acc, reason };
      const text = `fine-tuning run ${runId}: candidate ${result.candidate.version} not promoted, ${active.version} stays: ${reason}`;
      if (this.stopping) this.log.info(fields, text);
      else if (decision.verdict === 'unmeasured') this.log.warn({ code: 'PW_E_FINETUNE_UNMEASURED', ...fields }, text);
      else this.log.warn({ code: 'PW_E_FINETUNE_REJECTED', ...fields }, text);
      return runs.get(runId)!;
    }
    await this.recordGate(result, { verdict: decision.verdict, promoted: true, reason: decision.reason });
    await this.opts.registry.promote(result.candidate, 'finetune', `fine-tuning run ${runId}: ${decision.reason}`);
    try {
      await this.opts.onPromoted(result.candidate);
    } catch (err) {
      // The live classifier could not load it: put the previous ensemble back in the file too.
      await this.opts.registry.promote(active, 'rollback', `the classifier could not load ${result.candidate.version}`).catch(() => undefined);
      throw err;
    }
    runs.finish(runId, { ...common, status: 'promoted', reason: decision.reason, seconds: (performance.now() - info.t0) / 1000 }, this.now());
    this.log.info({ runId, from: active.version, to: result.candidate.version, accuracy: acc, newClasses: info.newClasses }, `fine-tuning run ${runId}: promoted ${result.candidate.version}`);
    return runs.get(runId)!;
  }

  /**
   * The gate's outcome in each candidate member's meta.json (training.finetune.gate), so that the
   * model registry (`plankwatch models list`) tells a kept candidate's reason. meta.json is outside
   * the checksums, so this leaves the member verifiable.
   */
  private async recordGate(result: FinetuneJobResult, gate: { verdict: GateDecision['verdict'] | 'stopped'; promoted: boolean; reason: string }): Promise<void> {
    for (const m of result.members) {
      const dir = path.join(this.opts.registry.modelsDir, m.name, m.version);
      const meta = await readMeta(dir);
      const finetune = (meta.training.finetune ?? {}) as Record<string, unknown>;
      await writeMeta(dir, { ...meta, training: { ...meta.training, finetune: { ...finetune, gate } } });
    }
  }

  /**
   * Each label's image file: one that holds exactly that frame's bytes (checked against its
   * SHA-256, never through a link), in the watch or archive folder. A label whose file is gone, or
   * now holds other bytes (logged with its code), is left out: never trained on another organism.
   */
  private async resolveImages(labels: readonly Pick<ValidatedLabel, 'sha256' | 'label'>[]): Promise<{ found: JobLabel[]; missing: number }> {
    const archive = new ImageArchive({ roots: ingestRoots(this.opts.images), logger: this.log });
    const found: JobLabel[] = [];
    let missing = 0;
    for (const l of labels) {
      const file = await this.findFile(archive, l.sha256, this.opts.review.sourcePaths(l.sha256));
      if (file) found.push({ sha256: l.sha256, label: l.label, file });
      else missing++;
    }
    return { found, missing };
  }

  private async findFile(archive: ImageArchive, sha256: string, relPaths: string[]): Promise<string | undefined> {
    try {
      return (await archive.read(sha256, relPaths))?.path;
    } catch {
      return undefined; // refused and logged by the archive (PW_E_IMAGE_MISMATCH, PW_E_IMAGE_LINK…)
    }
  }
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}
