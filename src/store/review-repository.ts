// The review tables (migration 3) as the review stage uses them: the latest prediction of each frame
// with its current label, the append-only label events, and what fine-tuning and sync read back.
// Which change is allowed is the review stage's; this file only keeps and finds. Every call is
// synchronous.
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './db.js';
import { PlankwatchError } from '../errors.js';

/** A frame's latest prediction with its current label, if reviewed. */
export interface ReviewItemRow {
  sha256: string;
  rel_path: string;
  width: number | null;
  height: number | null;
  area: number | null;
  area_um2: number | null;
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

/** One row of label_events, with the frame's path. */
export interface LabelEventRow {
  id: number;
  sha256: string;
  rel_path: string;
  action: string;
  status: 'validated' | 'dubious';
  label: string;
  previous_status: string;
  previous_label: string;
  new_class: number;
  user: string;
  at: number;
}

/** A label change to record. */
export interface LabelEventInsert {
  sha256: string;
  action: string;
  status: 'validated' | 'dubious';
  label: string;
  previousStatus: string;
  previousLabel: string;
  newClass: boolean;
  user: string;
  at: number;
}

/** Which items a page of the review queue holds. */
export interface ReviewQueueQuery {
  label?: string;
  since?: number;
  until?: number;
  /** Label states wanted ('predicted' = not reviewed), distinct and sorted. */
  statuses: readonly string[];
  limit: number;
  offset: number;
  /** The count stops here: `total` is at most countCap + 1. */
  countCap: number;
}

/** The review tables, for one connection; created by the Store. */
export interface ReviewRepository {
  /** Runs `fn` in one immediate transaction. */
  transaction<T>(fn: () => T): T;
  item(sha256: string): ReviewItemRow | undefined;
  /** A page of the queue, most uncertain first (highest disagreement, then lowest margin), and how many there are. */
  queue(query: ReviewQueueQuery): { rows: ReviewItemRow[]; total: number };
  /** Each member's vote on a prediction, by member. */
  members(predictionId: number): { member: string; version: string; label: string; probability: number; top_k: string }[];
  /** Every path a frame was stored under, original first. */
  sources(sha256: string): { rel_path: string; role: 'original' | 'duplicate' }[];
  /** Records a label change and makes it the frame's current label; returns the event's id. */
  recordLabel(change: LabelEventInsert): number;
  history(sha256: string): LabelEventRow[];
  /** Current validated labels whose latest event id is above `sinceId`, oldest change first. */
  validatedSince(sinceId: number, limit: number): { event_id: number; sha256: string; rel_path: string; label: string; user: string; at: number }[];
  /** Current validated labels per class, changed after event `sinceEventId` and at or after `sinceMs`. */
  validatedCounts(sinceEventId: number, sinceMs: number): { label: string; n: number }[];
  /** The largest label event id (0 if none). */
  lastEventId(): number;
  /** Classes people have labelled, with how many frames are validated as each. */
  labelClasses(): { label: string; validated: number }[];
  /** Classes ever predicted. */
  predictedClasses(): string[];
  /** True when a class was ever predicted or labelled. */
  labelSeen(label: string): boolean;
}

// The latest prediction of each frame, with its current label if reviewed.
const ITEM_SELECT = `
  SELECT f.sha256, f.rel_path, f.width, f.height, f.area, f.area_um2, f.format, f.arrived_at, p.classified_at,
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

/** The statements behind ReviewRepository, prepared once per connection (the queue's per filter shape). */
export function createReviewRepository(db: SqliteDatabase): ReviewRepository {
  const s = {
    item: db.prepare<[string], ReviewItemRow>(`${ITEM_SELECT} AND f.sha256 = ?`),
    insertEvent: db.prepare<[string, string, string, string, string, string, number, string, number], { id: number }>(
      `INSERT INTO label_events (sha256, action, status, label, previous_status, previous_label, new_class, user, at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    upsertLabel: db.prepare<[string, string, string, string, number, number]>(
      `INSERT INTO labels (sha256, status, label, user, at, event_id) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (sha256) DO UPDATE SET status = excluded.status, label = excluded.label, user = excluded.user,
         at = excluded.at, event_id = excluded.event_id`,
    ),
    history: db.prepare<[string], LabelEventRow>(`${EVENT_SELECT} WHERE e.sha256 = ? ORDER BY e.id`),
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
  const queueStatements = new Map<string, Statement<unknown[]>>();
  const queueStatement = (key: string, sql: () => string): Statement<unknown[]> => {
    let stmt = queueStatements.get(key);
    if (!stmt) {
      stmt = db.prepare<unknown[]>(sql());
      queueStatements.set(key, stmt);
    }
    return stmt;
  };

  return {
    transaction: (fn) => db.transaction(fn).immediate(),
    item: (sha256) => s.item.get(sha256),
    queue: (q) => {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (q.label !== undefined) {
        where.push('p.label = ?');
        params.push(q.label);
      }
      if (q.since !== undefined) {
        where.push('p.classified_at >= ?');
        params.push(q.since);
      }
      if (q.until !== undefined) {
        where.push('p.classified_at < ?');
        params.push(q.until);
      }
      const states: string[] = [];
      if (q.statuses.includes('predicted')) states.push('l.status IS NULL');
      const reviewed = q.statuses.filter((x) => x !== 'predicted');
      if (reviewed.length > 0) states.push(`l.status IN (${reviewed.map((x) => `'${x}'`).join(', ')})`);
      if (states.length < 3) where.push(`(${states.join(' OR ')})`);
      const cond = where.map((w) => ` AND ${w}`).join('');
      const page = queueStatement(`page${cond}`, () => `${ITEM_SELECT}${cond} ORDER BY p.disagreement DESC, p.margin ASC, p.id ASC LIMIT ? OFFSET ?`);
      const count = queueStatement(`count${cond}`, () => `SELECT count(*) AS n FROM (${ITEM_SELECT}${cond} LIMIT ${q.countCap + 1})`);
      return { rows: page.all(...params, q.limit, q.offset) as ReviewItemRow[], total: (count.get(...params) as { n: number }).n };
    },
    members: (predictionId) => s.members.all(predictionId),
    sources: (sha256) => s.sources.all(sha256),
    recordLabel: (c) => {
      const inserted = s.insertEvent.get(c.sha256, c.action, c.status, c.label, c.previousStatus, c.previousLabel, c.newClass ? 1 : 0, c.user, c.at);
      if (!inserted) throw new PlankwatchError('PW_E_DB', 'INSERT … RETURNING gave no row');
      s.upsertLabel.run(c.sha256, c.status, c.label, c.user, c.at, inserted.id);
      return inserted.id;
    },
    history: (sha256) => s.history.all(sha256),
    validatedSince: (sinceId, limit) => s.validatedSince.all(sinceId, limit),
    validatedCounts: (sinceEventId, sinceMs) => s.validatedCounts.all(sinceEventId, sinceMs),
    lastEventId: () => s.lastEventId.get()?.id ?? 0,
    labelClasses: () => s.labelClasses.all(),
    predictedClasses: () => s.predictedClasses.all().map((r) => r.label),
    labelSeen: (label) => s.labelSeen.get(label, label) !== undefined,
  };
}
