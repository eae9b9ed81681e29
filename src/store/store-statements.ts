// The prepared statements of the store's core tables (frames, sources, predictions, counts,
// rejects, totals): the SQL the Store runs, kept apart from what it does with the rows.
import type { SqliteDatabase } from './db.js';
import type { CountRow } from './windows.js';

export type Statements = ReturnType<typeof prepareStatements>;

/** The `totals` table (migration 6); absent from a database at an older schema opened read-only. */
export function prepareTotals(db: SqliteDatabase) {
  return {
    bump: db.prepare<[string, number]>(
      `INSERT INTO totals (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`,
    ),
    all: db.prepare<[], { name: string; value: number }>(`SELECT name, value FROM totals`),
  };
}

export const QUARANTINED = 'quarantined:';

export function prepareStatements(db: SqliteDatabase) {
  return {
    insertFrame: db.prepare<[string, string, number, number, number, number, number | null, string, number, number, number], { id: number }>(
      `INSERT INTO frames (sha256, rel_path, bytes, width, height, area, area_um2, format, arrived_at, classified_at, stored_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING RETURNING id`,
    ),
    frameBySha: db.prepare<[string], { id: number; rel_path: string }>(`SELECT id, rel_path FROM frames WHERE sha256 = ?`),
    sourceSeen: db.prepare<[string, string, number, number | null], { one: number }>(
      `SELECT 1 AS one FROM frame_sources WHERE rel_path = ? AND sha256 = ? AND bytes = ? AND mtime_ms IS ?`,
    ),
    insertPrediction: db.prepare<[number, string, string, number, number, number, string, number], { id: number }>(
      `INSERT INTO predictions (frame_id, ensemble_version, label, probability, margin, disagreement, top_k, classified_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    insertMember: db.prepare<[number, string, string, string, number, string]>(
      `INSERT INTO member_predictions (prediction_id, member, version, label, probability, top_k) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    bumpCount: db.prepare<[number, number, number, string]>(
      `INSERT INTO counts (window_ms, window_start, window_end, label, count) VALUES (?, ?, ?, ?, 1)
       ON CONFLICT (window_ms, window_start, label) DO UPDATE SET count = count + 1`,
    ),
    upsertSource: db.prepare<[string, string, string, number, number | null, number]>(
      `INSERT INTO frame_sources (sha256, rel_path, role, bytes, mtime_ms, seen_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (rel_path, sha256) DO UPDATE SET bytes = excluded.bytes, mtime_ms = excluded.mtime_ms, seen_at = excluded.seen_at`,
    ),
    sourceRole: db.prepare<[string, number, number], { role: 'original' | 'duplicate' }>(
      `SELECT role FROM frame_sources WHERE rel_path = ? AND bytes = ? AND (mtime_ms IS NULL OR mtime_ms = ?)
       ORDER BY id DESC LIMIT 1`,
    ),
    rejectedSource: db.prepare<[string, number, number], { id: number }>(
      `SELECT id FROM rejects WHERE rel_path = ? AND (bytes IS NULL OR bytes = ?) AND (mtime_ms IS NULL OR mtime_ms = ?)
       ORDER BY id DESC LIMIT 1`,
    ),
    insertReject: db.prepare<[string, string | null, number | null, number | null, string, string, string | null, number], { id: number }>(
      `INSERT INTO rejects (rel_path, sha256, bytes, mtime_ms, code, detail, quarantined_path, at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    setQuarantined: db.prepare<[string, number]>(`UPDATE rejects SET quarantined_path = ? WHERE id = ?`),
    hasFrame: db.prepare<[string], { one: number }>(`SELECT 1 AS one FROM frames WHERE sha256 = ?`),
    countsFrom: db.prepare<[number, number], CountRow>(
      `SELECT window_start, window_end, label, count FROM counts WHERE window_ms = ? AND window_start >= ?
       ORDER BY window_start, label`,
    ),
    countsOf: db.prepare<[number, number], CountRow>(
      `SELECT window_start, window_end, label, count FROM counts WHERE window_ms = ? AND window_start = ? ORDER BY label`,
    ),
    recentStarts: db.prepare<[number, number], { window_start: number }>(
      `SELECT DISTINCT window_start FROM counts WHERE window_ms = ? ORDER BY window_start DESC LIMIT ?`,
    ),
    frameCount: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM frames`),
    predictionCount: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM predictions`),
    duplicateCount: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM frame_sources WHERE role = 'duplicate'`),
    rejectsByCode: db.prepare<[], { code: string; n: number }>(`SELECT code, count(*) AS n FROM rejects GROUP BY code`),
    hasTotals: db.prepare<[], { one: number }>(`SELECT 1 AS one FROM sqlite_master WHERE type = 'table' AND name = 'totals'`),
    framesWithoutPrediction: db.prepare<[number], FrameRow>(
      `SELECT f.* FROM frames f WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE p.frame_id = f.id) ORDER BY f.id LIMIT ?`,
    ),
  };
}

export interface FrameRow {
  id: number;
  sha256: string;
  rel_path: string;
  bytes: number;
  width: number | null;
  height: number | null;
  area: number | null;
  format: string | null;
  arrived_at: number;
  classified_at: number | null;
  stored_at: number;
}

/** Whole milliseconds, as stored (fs mtimes carry a fraction). */
export function ms(t: number): number {
  return Math.trunc(t);
}
