// The fine-tuning tables (migration 5) as the fine-tuning stage uses them: one row per run, the
// frozen train/eval part of each frame, and the ship's confidently classified frames to replay.
// What a run does and decides is the fine-tuning stage's; this file only keeps and finds. Short
// synchronous statements: no transaction is ever held across training.
import type { SqliteDatabase } from './db.js';

/** A finetune_runs row; the JSON columns as text. */
export interface FinetuneRunRow {
  id: number;
  trigger: string;
  status: string;
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

/** How a run ended; the JSON columns as text. */
export interface FinetuneRunEnd {
  id: number;
  status: string;
  finishedAt: number;
  candidateVersion: string | null;
  labelsTrain: number;
  labelsEval: number;
  newClasses: string;
  members: string;
  gate: string | null;
  reason: string | null;
  warnings: string;
  seconds: number | null;
}

/** The fine-tuning tables, for one connection; created by the Store. */
export interface FinetuneRepository {
  /** Runs `fn` in one (deferred) transaction. */
  transaction<T>(fn: () => T): T;
  /** Records a run as 'running'; returns its id. */
  insertRun(trigger: string, startedAt: number, baseVersion: string, lastEventId: number): number;
  finishRun(end: FinetuneRunEnd): void;
  setBaseVersion(id: number, baseVersion: string): void;
  run(id: number): FinetuneRunRow | undefined;
  /** The latest runs, newest first. */
  runs(limit: number): FinetuneRunRow[];
  /** The latest run that was not skipped. */
  lastRun(): FinetuneRunRow | undefined;
  /** The largest label event id of the runs that completed (promoted, rejected, skipped); 0 if none. */
  lastUsedEventId(): number;
  /** Marks runs left 'running' as failed (interrupted). */
  closeInterrupted(now: number): void;
  /** A frame's frozen part, if it has one. */
  part(sha256: string): 'train' | 'eval' | undefined;
  /** Freezes a frame's part (kept if it has one already). */
  setPart(sha256: string, part: 'train' | 'eval', at: number): void;
  /**
   * Up to `limit` frames whose latest prediction is `label` with at least `minProbability` and no
   * member disagreeing, that nobody labelled and that are not frozen in the eval part, newest first.
   */
  confidentFrames(label: string, minProbability: number, limit: number): { sha256: string; label: string }[];
}

/** The statements behind FinetuneRepository, prepared once per connection. */
export function createFinetuneRepository(db: SqliteDatabase): FinetuneRepository {
  const s = {
    insert: db.prepare<[string, number, string, number], { id: number }>(
      `INSERT INTO finetune_runs (trigger, status, started_at, base_version, last_event_id) VALUES (?, 'running', ?, ?, ?) RETURNING id`,
    ),
    update: db.prepare<[FinetuneRunEnd]>(
      `UPDATE finetune_runs SET status = @status, finished_at = @finishedAt, candidate_version = @candidateVersion, labels_train = @labelsTrain,
         labels_eval = @labelsEval, new_classes = @newClasses, members = @members, gate = @gate, reason = @reason, warnings = @warnings, seconds = @seconds
       WHERE id = @id`,
    ),
    setBase: db.prepare<[string, number]>('UPDATE finetune_runs SET base_version = ? WHERE id = ?'),
    get: db.prepare<[number], FinetuneRunRow>(`SELECT * FROM finetune_runs WHERE id = ?`),
    list: db.prepare<[number], FinetuneRunRow>(`SELECT * FROM finetune_runs ORDER BY id DESC LIMIT ?`),
    last: db.prepare<[], FinetuneRunRow>(`SELECT * FROM finetune_runs WHERE status != 'skipped' ORDER BY id DESC LIMIT 1`),
    // Labels count as used by runs that completed: a failed, cancelled or interrupted run leaves
    // them new (finetune.minIntervalHours keeps it from being retried at once).
    lastUsedEvent: db.prepare<[], { id: number | null }>(`SELECT max(last_event_id) AS id FROM finetune_runs WHERE status IN ('promoted', 'rejected', 'skipped')`),
    interrupted: db.prepare<[number]>(`UPDATE finetune_runs SET status = 'failed', finished_at = ?, reason = 'interrupted (the daemon stopped during the run)' WHERE status = 'running'`),
    part: db.prepare<[string], { part: 'train' | 'eval' }>(`SELECT part FROM finetune_split WHERE sha256 = ?`),
    setPart: db.prepare<[string, string, number]>(`INSERT OR IGNORE INTO finetune_split (sha256, part, assigned_at) VALUES (?, ?, ?)`),
    // Uses predictions_label (label, then id): the newest frames of one class first. Only each
    // frame's latest prediction counts; labelled frames (validated or dubious) are left out.
    confident: db.prepare<[string, number, number], { sha256: string; label: string }>(
      `SELECT f.sha256 AS sha256, p.label AS label
         FROM predictions p
         JOIN frames f ON f.id = p.frame_id
         LEFT JOIN labels l ON l.sha256 = f.sha256
         LEFT JOIN finetune_split s ON s.sha256 = f.sha256
        WHERE p.label = ? AND p.probability >= ? AND p.disagreement = 0
          AND l.sha256 IS NULL
          AND (s.part IS NULL OR s.part = 'train')
          AND NOT EXISTS (SELECT 1 FROM predictions q WHERE q.frame_id = p.frame_id AND q.id > p.id)
        ORDER BY p.id DESC
        LIMIT ?`,
    ),
  };
  return {
    transaction: (fn) => db.transaction(fn)(),
    insertRun: (trigger, startedAt, baseVersion, lastEventId) => s.insert.get(trigger, startedAt, baseVersion, lastEventId)!.id,
    finishRun: (end) => void s.update.run(end),
    setBaseVersion: (id, baseVersion) => void s.setBase.run(baseVersion, id),
    run: (id) => s.get.get(id),
    runs: (limit) => s.list.all(limit),
    lastRun: () => s.last.get(),
    lastUsedEventId: () => s.lastUsedEvent.get()?.id ?? 0,
    closeInterrupted: (now) => void s.interrupted.run(now),
    part: (sha256) => s.part.get(sha256)?.part,
    setPart: (sha256, part, at) => void s.setPart.run(sha256, part, at),
    confidentFrames: (label, minProbability, limit) => s.confident.all(label, minProbability, limit),
  };
}
