// The SQL behind the review store: its prepared statements and the mapping of their rows to the
// review types.
import type { SqliteDatabase } from '../store/db.js';
import type { ClassProb } from '../types.js';
import type { LabelAction, LabelRecord, LabelStatus, ReviewItem } from './review-types.js';

export interface ItemRow {
  sha256: string;
  rel_path: string;
  width: number | null;
  height: number | null;
  area: number | null;
  format: string | null;
  arrived_at: number;
  classified_at: number;
  p_label: string;
  probability: number;
  margin: number;
  disagreement: number;
  top_k: string;
  ensemble_version: string;
  prediction_id: number;
  l_status: 'validated' | 'dubious' | null;
  l_label: string | null;
  l_user: string | null;
  l_at: number | null;
}

export interface EventRow {
  id: number;
  sha256: string;
  rel_path: string;
  action: LabelAction;
  status: 'validated' | 'dubious';
  label: string;
  previous_status: LabelStatus;
  previous_label: string;
  new_class: number;
  user: string;
  at: number;
}

// The latest prediction of each frame, with its current label if reviewed.
export const ITEM_SELECT = `
  SELECT f.sha256, f.rel_path, f.width, f.height, f.area, f.format, f.arrived_at, p.classified_at,
         p.label AS p_label, p.probability, p.margin, p.disagreement, p.top_k, p.ensemble_version,
         p.id AS prediction_id, l.status AS l_status, l.label AS l_label, l.user AS l_user, l.at AS l_at
  FROM predictions p
  JOIN frames f ON f.id = p.frame_id
  LEFT JOIN labels l ON l.sha256 = f.sha256
  WHERE NOT EXISTS (SELECT 1 FROM predictions p2 WHERE p2.frame_id = p.frame_id AND p2.id > p.id)`;

const EVENT_SELECT = `
  SELECT e.id, e.sha256, f.rel_path, e.action, e.status, e.label, e.previous_status, e.previous_label,
         e.new_class, e.user, e.at
  FROM label_events e JOIN frames f ON f.sha256 = e.sha256`;

export function prepareStatements(db: SqliteDatabase) {
  return {
    item: db.prepare<[string], ItemRow>(`${ITEM_SELECT} AND f.sha256 = ?`),
    insertEvent: db.prepare<[string, string, string, string, string, string, number, string, number], { id: number }>(
      `INSERT INTO label_events (sha256, action, status, label, previous_status, previous_label, new_class, user, at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    upsertLabel: db.prepare<[string, string, string, string, number, number]>(
      `INSERT INTO labels (sha256, status, label, user, at, event_id) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (sha256) DO UPDATE SET status = excluded.status, label = excluded.label, user = excluded.user,
         at = excluded.at, event_id = excluded.event_id`,
    ),
    history: db.prepare<[string], EventRow>(`${EVENT_SELECT} WHERE e.sha256 = ? ORDER BY e.id`),
    members: db.prepare<[number], { member: string; version: string; label: string; probability: number; top_k: string }>(
      `SELECT member, version, label, probability, top_k FROM member_predictions WHERE prediction_id = ? ORDER BY member`,
    ),
    sources: db.prepare<[string], { rel_path: string; role: 'original' | 'duplicate' }>(
      `SELECT rel_path, role FROM frame_sources WHERE sha256 = ? ORDER BY role = 'duplicate', id`,
    ),
    validatedSince: db.prepare<[number, number], { event_id: number; sha256: string; rel_path: string; label: string; user: string; at: number }>(
      `SELECT l.event_id, l.sha256, f.rel_path, l.label, l.user, l.at FROM labels l JOIN frames f ON f.sha256 = l.sha256
       WHERE l.status = 'validated' AND l.event_id > ? ORDER BY l.event_id LIMIT ?`,
    ),
    validatedCounts: db.prepare<[number, number], { label: string; n: number }>(
      `SELECT label, count(*) AS n FROM labels WHERE status = 'validated' AND event_id > ? AND at >= ? GROUP BY label`,
    ),
    lastEventId: db.prepare<[], { id: number | null }>(`SELECT max(id) AS id FROM label_events`),
    labelClasses: db.prepare<[], { label: string; validated: number }>(
      `SELECT label, sum(status = 'validated') AS validated FROM labels GROUP BY label`,
    ),
    // counts holds one row per window and predicted label: far fewer rows than predictions.
    predictedClasses: db.prepare<[], { label: string }>(`SELECT DISTINCT label FROM counts`),
    labelSeen: db.prepare<[string, string], { one: number }>(
      `SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM counts WHERE label = ?) OR EXISTS (SELECT 1 FROM labels WHERE label = ?)`,
    ),
  };
}

export function toItem(r: ItemRow): ReviewItem {
  return {
    sha256: r.sha256,
    relPath: r.rel_path,
    width: r.width,
    height: r.height,
    area: r.area,
    format: r.format,
    arrivedAt: r.arrived_at,
    classifiedAt: r.classified_at,
    prediction: {
      label: r.p_label,
      probability: r.probability,
      margin: r.margin,
      disagreement: r.disagreement,
      topK: JSON.parse(r.top_k) as ClassProb[],
      ensembleVersion: r.ensemble_version,
    },
    state:
      r.l_status === null
        ? { status: 'predicted', label: r.p_label, user: null, at: null }
        : { status: r.l_status, label: r.l_label ?? r.p_label, user: r.l_user, at: r.l_at },
  };
}

export function toRecord(r: EventRow): LabelRecord {
  return {
    eventId: r.id,
    sha256: r.sha256,
    relPath: r.rel_path,
    action: r.action,
    status: r.status,
    label: r.label,
    previousStatus: r.previous_status,
    previousLabel: r.previous_label,
    newClass: r.new_class === 1,
    user: r.user,
    at: r.at,
  };
}
