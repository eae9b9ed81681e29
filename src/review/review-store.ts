// Label review in SQLite: the uncertainty queue, label writes (append-only events plus the current
// state), history, and what fine-tuning and sync read back. Everything is synchronous; writes are
// one transaction each, and listeners registered with onLabelChanged run inside it.
import { PlankwatchError } from '../errors.js';
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from '../store/db.js';
import type { ClassProb } from '../types.js';

/** Label states, as EcoTaxa names them. */
export type LabelStatus = 'predicted' | 'validated' | 'dubious';
/** What a person did: confirm the current label, correct it to another class, or mark it dubious. */
export type LabelAction = 'confirm' | 'correct' | 'dubious';

/** One label change asked for (API body of POST /api/labels, one item of a bulk request). */
export interface LabelRequest {
  sha256: string;
  action: LabelAction;
  /**
   * confirm: optional; when given it must equal the current label (else PW_E_REVIEW_CONFLICT).
   * correct: required, the right class. dubious: optional, the suspected class (default: current).
   */
  label?: string;
  /** Who did it (free text, 1 to 64 characters). */
  user: string;
  /** correct: the label is a class the ensemble does not know yet, on purpose. */
  newClass?: boolean;
}

/** One row of label_events: what the history shows and what onLabelChanged listeners receive. */
export interface LabelRecord {
  eventId: number;
  sha256: string;
  /** Path (relative to the watch folder) the frame was first seen under. */
  relPath: string;
  action: LabelAction;
  status: Exclude<LabelStatus, 'predicted'>;
  label: string;
  previousStatus: LabelStatus;
  previousLabel: string;
  /** True when the label was not a known class when it was given. */
  newClass: boolean;
  user: string;
  /** ms since epoch. */
  at: number;
}

/** A validated label, for fine-tuning. */
export interface ValidatedLabel {
  /** label_events id of the change that made it: pass the largest one back as `sinceId`. */
  eventId: number;
  sha256: string;
  relPath: string;
  label: string;
  user: string;
  at: number;
}

export interface CurrentLabel {
  status: LabelStatus;
  label: string;
  user: string | null;
  at: number | null;
}

/** One ROI as the review page and API show it. */
export interface ReviewItem {
  sha256: string;
  relPath: string;
  width: number | null;
  height: number | null;
  area: number | null;
  format: string | null;
  arrivedAt: number;
  classifiedAt: number;
  prediction: {
    label: string;
    probability: number;
    margin: number;
    disagreement: number;
    topK: ClassProb[];
    ensembleVersion: string;
  };
  state: CurrentLabel;
}

/** A frame with its members' opinions and every source path (GET /api/frames/:sha256). */
export interface FrameDetail extends ReviewItem {
  members: { member: string; version: string; label: string; probability: number; topK: ClassProb[] }[];
  sources: { relPath: string; role: 'original' | 'duplicate' }[];
}

export interface QueueFilter {
  /** Predicted label (the ensemble's), exact. */
  label?: string;
  /** Classified at or after (ms). */
  since?: number;
  /** Classified before (ms). */
  until?: number;
  /** Which states to list (default ['predicted']). */
  status?: readonly LabelStatus[];
  limit?: number;
  offset?: number;
}

export interface QueuePage {
  items: ReviewItem[];
  /** Matching ROIs (counted up to `QUEUE_COUNT_CAP`; `totalCapped` says when the cap was hit). */
  total: number;
  totalCapped: boolean;
  limit: number;
  offset: number;
}

export interface LabelOutcome {
  sha256: string;
  ok: boolean;
  record?: LabelRecord;
  error?: { code: ReviewErrorCode; message: string };
}

export interface ClassInfo {
  name: string;
  /** True when the active ensemble knows the class; false for classes introduced by a correction. */
  known: boolean;
  /** Current validated labels of this class. */
  validated: number;
}

export interface ValidatedCounts {
  total: number;
  byLabel: Record<string, number>;
  /** Largest label_events id seen (0 if none): a point to count from next time. */
  lastEventId: number;
}

/** Called inside the label-write transaction; throwing rolls the write back. */
export type LabelListener = (record: LabelRecord, db: SqliteDatabase) => void;

export type ReviewErrorCode = 'PW_E_REVIEW_REQUEST' | 'PW_E_REVIEW_NOT_FOUND' | 'PW_E_REVIEW_CONFLICT' | 'PW_E_REVIEW_NEW_CLASS';

export const QUEUE_MAX_LIMIT = 500;
export const QUEUE_COUNT_CAP = 10_000;
export const BULK_MAX = 500;
/** Class names: a letter or digit, then letters, digits, "_", "-", "." (1 to 100 characters). */
export const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

export interface ReviewStoreOptions {
  /** The store's open connection (`store.database`), migrated to version 3 or later. */
  db: SqliteDatabase;
  /** Classes the active ensemble knows (read on each call: it changes when a new ensemble is promoted). */
  knownClasses: () => readonly string[];
  /** Clock; tests may fix it. Default Date.now. */
  now?: () => number;
}

interface ItemRow {
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

interface EventRow {
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
const ITEM_SELECT = `
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

function prepare(db: SqliteDatabase) {
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

/**
 * Review state over the store's connection. Construct after `store.open()`; it prepares its
 * statements at once (the tables come from migration 3).
 */
export class ReviewStore {
  private readonly db: SqliteDatabase;
  private readonly s: ReturnType<typeof prepare>;
  private readonly knownClasses: () => readonly string[];
  private readonly now: () => number;
  private readonly listeners = new Set<LabelListener>();
  private readonly queueStatements = new Map<string, Statement<unknown[]>>();

  constructor(options: ReviewStoreOptions) {
    this.db = options.db;
    this.knownClasses = options.knownClasses;
    this.now = options.now ?? Date.now;
    this.s = prepare(this.db);
  }

  /**
   * Registers a function called INSIDE each label-write transaction, once per change, with the
   * record just written and the connection (for an outbox insert in the same commit). If it
   * throws, the whole write is rolled back and the caller gets the error. Returns an unsubscribe.
   */
  onLabelChanged(listener: LabelListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * ROIs to review, most uncertain first: highest member disagreement, then lowest margin between
   * the top two classes. By default only ROIs still in state `predicted`.
   */
  queue(filter: QueueFilter = {}): QueuePage {
    const limit = clampInt(filter.limit ?? 50, 1, QUEUE_MAX_LIMIT);
    const offset = Math.max(0, Math.trunc(filter.offset ?? 0));
    const status = filter.status && filter.status.length > 0 ? [...new Set(filter.status)].sort() : ['predicted'];
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.label !== undefined) {
      where.push('p.label = ?');
      params.push(filter.label);
    }
    if (filter.since !== undefined) {
      where.push('p.classified_at >= ?');
      params.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push('p.classified_at < ?');
      params.push(filter.until);
    }
    const states: string[] = [];
    if (status.includes('predicted')) states.push('l.status IS NULL');
    const reviewed = status.filter((x) => x !== 'predicted');
    if (reviewed.length > 0) states.push(`l.status IN (${reviewed.map((x) => `'${x}'`).join(', ')})`);
    if (states.length < 3) where.push(`(${states.join(' OR ')})`);
    const cond = where.map((w) => ` AND ${w}`).join('');
    const key = `${cond}`;
    let pageStmt = this.queueStatements.get(`page${key}`);
    if (!pageStmt) {
      pageStmt = this.db.prepare<unknown[]>(`${ITEM_SELECT}${cond} ORDER BY p.disagreement DESC, p.margin ASC, p.id ASC LIMIT ? OFFSET ?`);
      this.queueStatements.set(`page${key}`, pageStmt);
    }
    let countStmt = this.queueStatements.get(`count${key}`);
    if (!countStmt) {
      countStmt = this.db.prepare<unknown[]>(`SELECT count(*) AS n FROM (${ITEM_SELECT}${cond} LIMIT ${QUEUE_COUNT_CAP + 1})`);
      this.queueStatements.set(`count${key}`, countStmt);
    }
    const rows = pageStmt.all(...params, limit, offset) as ItemRow[];
    const n = (countStmt.get(...params) as { n: number }).n;
    return {
      items: rows.map(toItem),
      total: Math.min(n, QUEUE_COUNT_CAP),
      totalCapped: n > QUEUE_COUNT_CAP,
      limit,
      offset,
    };
  }

  /** One frame with members and source paths, or undefined. */
  frame(sha256: string): FrameDetail | undefined {
    const row = this.s.item.get(sha256);
    if (!row) return undefined;
    return {
      ...toItem(row),
      members: this.s.members.all(row.prediction_id).map((m) => ({
        member: m.member,
        version: m.version,
        label: m.label,
        probability: m.probability,
        topK: JSON.parse(m.top_k) as ClassProb[],
      })),
      sources: this.s.sources.all(sha256).map((r) => ({ relPath: r.rel_path, role: r.role })),
    };
  }

  /** Every path a frame was stored under, original first (for finding its image on disk). */
  sourcePaths(sha256: string): string[] {
    return this.s.sources.all(sha256).map((r) => r.rel_path);
  }

  /** The current label of a frame, or undefined when no classified frame has this sha256. */
  current(sha256: string): CurrentLabel | undefined {
    const row = this.s.item.get(sha256);
    return row ? toItem(row).state : undefined;
  }

  /**
   * Applies one label change in its own transaction. Throws PlankwatchError PW_E_REVIEW_NOT_FOUND,
   * PW_E_REVIEW_CONFLICT, PW_E_REVIEW_NEW_CLASS or PW_E_REVIEW_REQUEST; a listener's error rolls back.
   */
  label(request: LabelRequest): LabelRecord {
    const [outcome] = this.db.transaction(() => [this.applyOne(request, true)]).immediate();
    return outcome!.record!;
  }

  /**
   * Applies many changes in one transaction. Items that cannot apply (unknown frame, conflict, new
   * class not confirmed) are skipped and reported; the others are written. A listener's error
   * rolls everything back and is thrown.
   */
  labelMany(requests: readonly LabelRequest[]): LabelOutcome[] {
    if (requests.length > BULK_MAX) throw new PlankwatchError('PW_E_REVIEW_REQUEST', `At most ${BULK_MAX} items per bulk request, got ${requests.length}.`);
    return this.db.transaction(() => requests.map((r) => this.applyOne(r, false))).immediate();
  }

  /** Every change to a frame's label, oldest first. */
  history(sha256: string): LabelRecord[] {
    return this.s.history.all(sha256).map(toRecord);
  }

  /**
   * Current validated labels whose latest change has a label_events id above `sinceId` (default:
   * all), oldest change first: the training set for fine-tuning. A label later marked dubious or
   * corrected again appears with its new state only.
   */
  validatedLabels(sinceId = 0, limit = Number.MAX_SAFE_INTEGER): ValidatedLabel[] {
    return this.s.validatedSince.all(sinceId, limit).map((r) => ({
      eventId: r.event_id,
      sha256: r.sha256,
      relPath: r.rel_path,
      label: r.label,
      user: r.user,
      at: r.at,
    }));
  }

  /** How many current validated labels changed after event `sinceEventId` and at or after `sinceMs`. */
  validatedCounts(since: { sinceEventId?: number; sinceMs?: number } = {}): ValidatedCounts {
    const byLabel: Record<string, number> = {};
    let total = 0;
    for (const r of this.s.validatedCounts.all(since.sinceEventId ?? 0, since.sinceMs ?? 0)) {
      byLabel[r.label] = r.n;
      total += r.n;
    }
    return { total, byLabel, lastEventId: this.s.lastEventId.get()?.id ?? 0 };
  }

  /** The active ensemble's classes, then classes only people have used (new ones), sorted by name. */
  classes(): ClassInfo[] {
    const known = new Set(this.knownClasses());
    const validated = new Map<string, number>();
    for (const r of this.s.labelClasses.all()) validated.set(r.label, r.validated);
    // Labels the store has predicted count as known too (an older ensemble may have had them).
    for (const r of this.s.predictedClasses.all()) known.add(r.label);
    const names = new Set([...known, ...validated.keys()]);
    return [...names]
      .sort((a, b) => a.localeCompare(b))
      .map((name) => ({ name, known: known.has(name), validated: validated.get(name) ?? 0 }));
  }

  /** True for a class of the active ensemble, one ever predicted, or one people have already used. */
  isKnownClass(label: string): boolean {
    return this.knownClasses().includes(label) || this.s.labelSeen.get(label, label) !== undefined;
  }

  private applyOne(request: LabelRequest, throwOnError: boolean): LabelOutcome {
    try {
      const record = this.write(request);
      return { sha256: request.sha256, ok: true, record };
    } catch (err) {
      if (throwOnError || !(err instanceof PlankwatchError) || !isReviewCode(err.code)) throw err;
      return { sha256: request.sha256, ok: false, error: { code: err.code, message: err.message } };
    }
  }

  private write(request: LabelRequest): LabelRecord {
    const row = this.s.item.get(request.sha256);
    if (!row) throw new PlankwatchError('PW_E_REVIEW_NOT_FOUND', `sha256 ${request.sha256}.`);
    const current = toItem(row).state;
    let label: string;
    let status: 'validated' | 'dubious';
    let newClass = false;
    switch (request.action) {
      case 'confirm':
        if (request.label !== undefined && request.label !== current.label) {
          throw new PlankwatchError('PW_E_REVIEW_CONFLICT', `Asked to confirm "${request.label}" but the current label of ${request.sha256} is "${current.label}" (${current.status}).`);
        }
        label = current.label;
        status = 'validated';
        break;
      case 'correct': {
        if (request.label === undefined) throw new PlankwatchError('PW_E_REVIEW_REQUEST', 'label: required for action "correct".');
        label = request.label;
        status = 'validated';
        newClass = !this.isKnownClass(label);
        if (newClass && request.newClass !== true) {
          throw new PlankwatchError('PW_E_REVIEW_NEW_CLASS', `"${label}" is not a known class; send "newClass": true to introduce it.`);
        }
        break;
      }
      case 'dubious':
        label = request.label ?? current.label;
        status = 'dubious';
        newClass = request.label !== undefined && !this.isKnownClass(label);
        if (newClass && request.newClass !== true) {
          throw new PlankwatchError('PW_E_REVIEW_NEW_CLASS', `"${label}" is not a known class; send "newClass": true to introduce it.`);
        }
        break;
    }
    if (!LABEL_PATTERN.test(label)) throw new PlankwatchError('PW_E_REVIEW_REQUEST', `label: "${label}" is not a valid class name.`);
    const at = Math.trunc(this.now());
    const inserted = this.s.insertEvent.get(request.sha256, request.action, status, label, current.status, current.label, newClass ? 1 : 0, request.user, at);
    if (!inserted) throw new Error('INSERT … RETURNING gave no row');
    this.s.upsertLabel.run(request.sha256, status, label, request.user, at, inserted.id);
    const record: LabelRecord = {
      eventId: inserted.id,
      sha256: request.sha256,
      relPath: row.rel_path,
      action: request.action,
      status,
      label,
      previousStatus: current.status,
      previousLabel: current.label,
      newClass,
      user: request.user,
      at,
    };
    for (const listener of this.listeners) listener(record, this.db);
    return record;
  }
}

function isReviewCode(code: string): code is ReviewErrorCode {
  return code === 'PW_E_REVIEW_REQUEST' || code === 'PW_E_REVIEW_NOT_FOUND' || code === 'PW_E_REVIEW_CONFLICT' || code === 'PW_E_REVIEW_NEW_CLASS';
}

function clampInt(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.trunc(n)));
}

function toItem(r: ItemRow): ReviewItem {
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

function toRecord(r: EventRow): LabelRecord {
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
