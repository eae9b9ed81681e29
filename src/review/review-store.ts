// Label review in SQLite: the uncertainty queue, label writes (append-only events plus the current
// state), history, and what fine-tuning and sync read back. Everything is synchronous; writes are
// one transaction each, and listeners registered with onLabelChanged run inside it.
import type { Statement } from 'better-sqlite3';
import { PlankwatchError } from '../errors.js';
import type { SqliteDatabase } from '../store/db.js';
import type { ClassProb } from '../types.js';
import { ITEM_SELECT, prepareStatements, toItem, toRecord, type ItemRow } from './review-sql.js';
import {
  BULK_MAX,
  LABEL_PATTERN,
  QUEUE_COUNT_CAP,
  QUEUE_MAX_LIMIT,
  type ClassInfo,
  type CurrentLabel,
  type FrameDetail,
  type LabelListener,
  type LabelOutcome,
  type LabelRecord,
  type LabelRequest,
  type QueueFilter,
  type QueuePage,
  type ReviewErrorCode,
  type ValidatedCounts,
  type ValidatedLabel,
} from './review-types.js';

export interface ReviewStoreOptions {
  /** The store's open connection (`store.database`), migrated to version 3 or later. */
  db: SqliteDatabase;
  /** Classes the active ensemble knows (read on each call: it changes when a new ensemble is promoted). */
  knownClasses: () => readonly string[];
  /** Clock; tests may fix it. Default Date.now. */
  now?: () => number;
}

/**
 * Review state over the store's connection. Construct after `store.open()`; it prepares its
 * statements at once (the tables come from migration 3).
 */
export class ReviewStore {
  private readonly db: SqliteDatabase;
  private readonly s: ReturnType<typeof prepareStatements>;
  private readonly knownClasses: () => readonly string[];
  private readonly now: () => number;
  private readonly listeners = new Set<LabelListener>();
  private readonly queueStatements = new Map<string, Statement<unknown[]>>();

  constructor(options: ReviewStoreOptions) {
    this.db = options.db;
    this.knownClasses = options.knownClasses;
    this.now = options.now ?? Date.now;
    this.s = prepareStatements(this.db);
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
