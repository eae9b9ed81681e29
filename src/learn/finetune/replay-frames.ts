// The ship's own frames to replay while fine-tuning: frames the ensemble classified with high
// confidence (probability at least finetune.replayMinProbability, every member agreeing) and
// nobody has labelled, the newest first, per class. A frame of the gate slice (recorded in
// finetune_split as 'eval', or hashing to it) is never one of them: gate frames are never trained on.
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from '../../store/db.js';
import { splitPart } from './split.js';

export interface ConfidentFrame {
  sha256: string;
  /** The ensemble's label, taken as the frame's class. */
  label: string;
}

export interface ConfidentFrameQuery {
  /** Classes to draw from (the active ensemble's). */
  classes: readonly string[];
  /** Frames wanted per class (twice as many are offered: some images may be gone). */
  perClass: number;
  minProbability: number;
  /** finetune.evalFraction: frames hashing to the gate slice are left out. */
  evalFraction: number;
}

type Row = { sha256: string; label: string };
const statements = new WeakMap<SqliteDatabase, Statement<[string, number, number], Row>>();

function statement(db: SqliteDatabase): Statement<[string, number, number], Row> {
  let s = statements.get(db);
  if (!s) {
    // Uses predictions_label (label, then id): the newest frames of one class first. Only each
    // frame's latest prediction counts; labelled frames (validated or dubious) are left out.
    s = db.prepare<[string, number, number], Row>(
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
    );
    statements.set(db, s);
  }
  return s;
}

/** Up to 2 x perClass confident frames of each class, none of the gate slice. */
export function confidentFrames(db: SqliteDatabase, query: ConfidentFrameQuery): ConfidentFrame[] {
  if (query.perClass <= 0 || query.classes.length === 0) return [];
  const s = statement(db);
  const out: ConfidentFrame[] = [];
  const want = query.perClass * 2;
  for (const label of [...query.classes].sort()) {
    // Ask for more than wanted: some hash into the gate slice and are dropped here.
    const rows = s.all(label, query.minProbability, want * 2 + 8);
    out.push(...rows.filter((r) => splitPart(r.sha256, query.evalFraction) === 'train').slice(0, want));
  }
  return out;
}
