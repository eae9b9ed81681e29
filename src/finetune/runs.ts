// Fine-tuning runs as the daemon records them (in the store's fine-tuning tables, through its
// FinetuneRepository), and the frozen train/eval part of each validated frame. Short synchronous
// calls; no transaction is ever held across training.
import type { FinetuneRunRow, FinetuneRepository } from '../store/index.js';
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

export class FinetuneRuns {
  private readonly rows: FinetuneRepository;

  constructor(rows: FinetuneRepository) {
    this.rows = rows;
  }

  /** Mark runs left 'running' by a previous process as failed. */
  closeInterrupted(now = Date.now()): void {
    this.rows.closeInterrupted(now);
  }

  start(trigger: RunTrigger, baseVersion: string, lastEventId: number, now = Date.now()): number {
    return this.rows.insertRun(trigger, now, baseVersion, lastEventId);
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
    this.rows.finishRun({
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
    const row = this.rows.run(id);
    return row ? toRun(row) : undefined;
  }

  list(limit = 50): FinetuneRun[] {
    return this.rows.runs(Math.max(1, Math.min(1000, Math.trunc(limit)))).map(toRun);
  }

  /** The latest run that was not skipped (for the schedule and finetune.minIntervalHours). */
  last(): FinetuneRun | undefined {
    const row = this.rows.lastRun();
    return row ? toRun(row) : undefined;
  }

  /** Labels with event ids above this were validated after the last completed run. */
  lastUsedEventId(): number {
    return this.rows.lastUsedEventId();
  }

  /** The run now knows its base: the ensemble active when its data was gathered. */
  setBaseVersion(id: number, baseVersion: string): void {
    this.rows.setBaseVersion(id, baseVersion);
  }

  /**
   * Each frame's part (train or eval), choosing and persisting it for frames seen for the first
   * time: one short transaction.
   */
  assignParts(sha256s: readonly string[], evalFraction: number, now = Date.now()): Map<string, 'train' | 'eval'> {
    return this.rows.transaction(() => {
      const out = new Map<string, 'train' | 'eval'>();
      for (const sha of sha256s) {
        let part = this.rows.part(sha);
        if (!part) {
          part = splitPart(sha, evalFraction);
          this.rows.setPart(sha, part, now);
        }
        out.set(sha, part);
      }
      return out;
    });
  }
}

function toRun(r: FinetuneRunRow): FinetuneRun {
  return {
    id: r.id,
    trigger: r.trigger as RunTrigger,
    status: r.status as RunStatus,
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
