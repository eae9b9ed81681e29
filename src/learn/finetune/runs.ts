// The fine-tuning tables (migration 5): one row per run, and the frozen train/eval part of each
// validated frame. Short synchronous statements; no transaction is ever held across training.
import type { SqliteDatabase } from '../../store/db.js';
import type { GateDecision } from './gate.js';
import type { EvaluationSets, MemberOutcome } from './job.js';
import { splitPart } from './split.js';

export type RunTrigger = 'threshold' | 'schedule' | 'api' | 'manual';
export type RunStatus = 'running' | 'promoted' | 'rejected' | 'failed' | 'skipped';

export interface FinetuneRun {
  id: number;
  trigger: RunTrigger;
  status: RunStatus;
  startedAt: number;
  finishedAt: number | null;
  baseVersion: string;
  candidateVersion: string | null;
  /** Largest label_events id among the labels this run saw. */
  lastEventId: number;
  labelsTrain: number;
  labelsEval: number;
  newClasses: string[];
  members: MemberOutcome[];
  /**
   * The gate's numbers and decision (null until evaluated): `evaluated` images in all, from the
   * `sets` (ship's slice, shipped reference set, folder). Runs recorded before the old classes were
   * measured apart lack `verdict`, `oldClasses` and `sets`.
   */
  gate: (GateDecision & { evaluated: number; sets: EvaluationSets }) | null;
  reason: string | null;
  warnings: string[];
  seconds: number | null;
}

interface RunRow {
  id: number;
  trigger: RunTrigger;
  status: RunStatus;
  started_at: number;
  finished_at: number | null;
  base_version: string;
  candidate_version: string | null;
  last_event_id: number;
  labels_train: number;
  labels_eval: number;
  new_classes: string;
  members: string;
  gate: string | null;
  reason: string | null;
  warnings: string;
  seconds: number | null;
}

export class FinetuneRuns {
  private readonly db: SqliteDatabase;
  private readonly s;

  constructor(db: SqliteDatabase) {
    this.db = db;
    this.s = {
      insert: db.prepare<[string, number, string, number], { id: number }>(
        `INSERT INTO finetune_runs (trigger, status, started_at, base_version, last_event_id) VALUES (?, 'running', ?, ?, ?) RETURNING id`,
      ),
      update: db.prepare(
        `UPDATE finetune_runs SET status = @status, finished_at = @finishedAt, candidate_version = @candidateVersion, labels_train = @labelsTrain,
           labels_eval = @labelsEval, new_classes = @newClasses, members = @members, gate = @gate, reason = @reason, warnings = @warnings, seconds = @seconds
         WHERE id = @id`,
      ),
      get: db.prepare<[number], RunRow>(`SELECT * FROM finetune_runs WHERE id = ?`),
      list: db.prepare<[number], RunRow>(`SELECT * FROM finetune_runs ORDER BY id DESC LIMIT ?`),
      last: db.prepare<[], RunRow>(`SELECT * FROM finetune_runs WHERE status != 'skipped' ORDER BY id DESC LIMIT 1`),
      // Labels count as used by runs that completed: a failed, cancelled or interrupted run leaves
      // them new (finetune.minIntervalHours keeps it from being retried at once).
      lastUsedEvent: db.prepare<[], { id: number | null }>(`SELECT max(last_event_id) AS id FROM finetune_runs WHERE status IN ('promoted', 'rejected', 'skipped')`),
      interrupted: db.prepare<[number], unknown>(`UPDATE finetune_runs SET status = 'failed', finished_at = ?, reason = 'interrupted (the daemon stopped during the run)' WHERE status = 'running'`),
      part: db.prepare<[string], { part: 'train' | 'eval' }>(`SELECT part FROM finetune_split WHERE sha256 = ?`),
      setPart: db.prepare<[string, string, number]>(`INSERT OR IGNORE INTO finetune_split (sha256, part, assigned_at) VALUES (?, ?, ?)`),
    };
  }

  /** Mark runs left 'running' by a previous process as failed. */
  closeInterrupted(now = Date.now()): void {
    this.s.interrupted.run(now);
  }

  start(trigger: RunTrigger, baseVersion: string, lastEventId: number, now = Date.now()): number {
    return this.s.insert.get(trigger, now, baseVersion, lastEventId)!.id;
  }

  finish(
    id: number,
    outcome: {
      status: Exclude<RunStatus, 'running'>;
      candidateVersion?: string | null;
      labelsTrain?: number;
      labelsEval?: number;
      newClasses?: string[];
      members?: MemberOutcome[];
      gate?: FinetuneRun['gate'];
      reason?: string | null;
      warnings?: string[];
      seconds?: number | null;
    },
    now = Date.now(),
  ): void {
    this.s.update.run({
      id,
      status: outcome.status,
      finishedAt: now,
      candidateVersion: outcome.candidateVersion ?? null,
      labelsTrain: outcome.labelsTrain ?? 0,
      labelsEval: outcome.labelsEval ?? 0,
      newClasses: JSON.stringify(outcome.newClasses ?? []),
      members: JSON.stringify(outcome.members ?? []),
      gate: outcome.gate ? JSON.stringify(outcome.gate) : null,
      reason: outcome.reason ?? null,
      warnings: JSON.stringify(outcome.warnings ?? []),
      seconds: outcome.seconds ?? null,
    });
  }

  get(id: number): FinetuneRun | undefined {
    const row = this.s.get.get(id);
    return row ? toRun(row) : undefined;
  }

  list(limit = 50): FinetuneRun[] {
    return this.s.list.all(Math.max(1, Math.min(1000, Math.trunc(limit)))).map(toRun);
  }

  /** The latest run that was not skipped (for the schedule and finetune.minIntervalHours). */
  last(): FinetuneRun | undefined {
    const row = this.s.last.get();
    return row ? toRun(row) : undefined;
  }

  /** Labels with event ids above this were validated after the last completed run. */
  lastUsedEventId(): number {
    return this.s.lastUsedEvent.get()?.id ?? 0;
  }

  /**
   * Each frame's part (train or eval), choosing and persisting it for frames seen for the first
   * time: one short transaction.
   */
  assignParts(sha256s: readonly string[], evalFraction: number, now = Date.now()): Map<string, 'train' | 'eval'> {
    return this.db.transaction(() => {
      const out = new Map<string, 'train' | 'eval'>();
      for (const sha of sha256s) {
        let part = this.s.part.get(sha)?.part;
        if (!part) {
          part = splitPart(sha, evalFraction);
          this.s.setPart.run(sha, part, now);
        }
        out.set(sha, part);
      }
      return out;
    })();
  }
}

function toRun(r: RunRow): FinetuneRun {
  return {
    id: r.id,
    trigger: r.trigger,
    status: r.status,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    baseVersion: r.base_version,
    candidateVersion: r.candidate_version,
    lastEventId: r.last_event_id,
    labelsTrain: r.labels_train,
    labelsEval: r.labels_eval,
    newClasses: JSON.parse(r.new_classes) as string[],
    members: JSON.parse(r.members) as MemberOutcome[],
    gate: r.gate ? (JSON.parse(r.gate) as FinetuneRun['gate']) : null,
    reason: r.reason,
    warnings: JSON.parse(r.warnings) as string[],
    seconds: r.seconds,
  };
}
