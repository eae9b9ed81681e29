// Label review: the uncertainty queue, label writes (append-only events plus the current state),
// history, and what fine-tuning and sync read back, over the store's review tables (its
// ReviewRepository). Everything is synchronous; writes are one transaction each, and listeners
// registered with onLabelChanged run inside it.
import { PlankwatchError } from '../errors.js';
import type { LabelEventRow, ReviewItemRow, ReviewRepository } from '../store/index.js';
import type { ClassProb } from '../types.js';
import {
  BULK_MAX,
  LABEL_PATTERN,
  QUEUE_COUNT_CAP,
  QUEUE_MAX_LIMIT,
  type ClassInfo,
  type CurrentLabel,
  type FrameDetail,
  type LabelAction,
  type LabelListener,
  type LabelOutcome,
  type LabelRecord,
  type LabelRequest,
  type LabelStatus,
  type QueueFilter,
  type QueuePage,
  type ReviewErrorCode,
  type ReviewItem,
  type ValidatedCounts,
  type ValidatedLabel,
} from './review-types.js';

export interface ReviewStoreOptions {
  /** The review tables (`store.reviewRepository()`), of a database migrated to version 3 or later. */
  repository: ReviewRepository;
  /** Classes the active ensemble knows (read on each call: it changes when a new ensemble is promoted). */
  knownClasses: () => readonly string[];
  /** Clock; tests may fix it. Default Date.now. */
  now?: () => number;
}

/** Review state over the store's review tables. */
export class ReviewStore {
  private readonly rows: ReviewRepository;
  private readonly knownClasses: () => readonly string[];
  private readonly now: () => number;
  private readonly listeners = new Set<LabelListener>();

  constructor(options: ReviewStoreOptions) {
    this.rows = options.repository;
    this.knownClasses = options.knownClasses;
    this.now = options.now ?? Date.now;
  }

  /**
   * Registers a function called INSIDE each label-write transaction, once per change, with the
   * record just written: what it writes through the same store (an outbox row) commits with the
   * label. If it throws, the whole write is rolled back and the caller gets the error. Returns an
   * unsubscribe.
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
    const { rows, total: n } = this.rows.queue({
      ...(filter.label !== undefined ? { label: filter.label } : {}),
      ...(filter.since !== undefined ? { since: filter.since } : {}),
      ...(filter.until !== undefined ? { until: filter.until } : {}),
      statuses: status,
      limit,
      offset,
      countCap: QUEUE_COUNT_CAP,
    });
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
    const row = this.rows.item(sha256);
    if (!row) return undefined;
    return {
      ...toItem(row),
      members: this.rows.members(row.prediction_id).map((m) => ({
        member: m.member,
        version: m.version,
        label: m.label,
        probability: m.probability,
        topK: JSON.parse(m.top_k) as ClassProb[],
      })),
      sources: this.rows.sources(sha256).map((r) => ({ relPath: r.rel_path, role: r.role })),
    };
  }

  /** Every path a frame was stored under, original first (for finding its image on disk). */
  sourcePaths(sha256: string): string[] {
    return this.rows.sources(sha256).map((r) => r.rel_path);
  }

  /** The current label of a frame, or undefined when no classified frame has this sha256. */
  current(sha256: string): CurrentLabel | undefined {
    const row = this.rows.item(sha256);
    return row ? toItem(row).state : undefined;
  }

  /**
   * Applies one label change in its own transaction. Throws PlankwatchError PW_E_REVIEW_NOT_FOUND,
   * PW_E_REVIEW_CONFLICT, PW_E_REVIEW_NEW_CLASS or PW_E_REVIEW_REQUEST; a listener's error rolls back.
   */
  label(request: LabelRequest): LabelRecord {
    const [outcome] = this.rows.transaction(() => [this.applyOne(request, true)]);
    return outcome!.record!;
  }

  /**
   * Applies many changes in one transaction. Items that cannot apply (unknown frame, conflict, new
   * class not confirmed) are skipped and reported; the others are written. A listener's error
   * rolls everything back and is thrown.
   */
  labelMany(requests: readonly LabelRequest[]): LabelOutcome[] {
    if (requests.length > BULK_MAX) throw new PlankwatchError('PW_E_REVIEW_REQUEST', `At most ${BULK_MAX} items per bulk request, got ${requests.length}.`);
    return this.rows.transaction(() => requests.map((r) => this.applyOne(r, false)));
  }

  /** Every change to a frame's label, oldest first. */
  history(sha256: string): LabelRecord[] {
    return this.rows.history(sha256).map(toRecord);
  }

  /**
   * Current validated labels whose latest change has a label_events id above `sinceId` (default:
   * all), oldest change first: the training set for fine-tuning. A label later marked dubious or
   * corrected again appears with its new state only.
   */
  validatedLabels(sinceId = 0, limit = Number.MAX_SAFE_INTEGER): ValidatedLabel[] {
    return this.rows.validatedSince(sinceId, limit).map((r) => ({
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
    for (const r of this.rows.validatedCounts(since.sinceEventId ?? 0, since.sinceMs ?? 0)) {
      byLabel[r.label] = r.n;
      total += r.n;
    }
    return { total, byLabel, lastEventId: this.rows.lastEventId() };
  }

  /** The active ensemble's classes, then classes only people have used (new ones), sorted by name. */
  classes(): ClassInfo[] {
    const known = new Set(this.knownClasses());
    const validated = new Map<string, number>();
    for (const r of this.rows.labelClasses()) validated.set(r.label, r.validated);
    // Labels the store has predicted count as known too (an older ensemble may have had them).
    for (const label of this.rows.predictedClasses()) known.add(label);
    const names = new Set([...known, ...validated.keys()]);
    return [...names]
      .sort((a, b) => a.localeCompare(b))
      .map((name) => ({ name, known: known.has(name), validated: validated.get(name) ?? 0 }));
  }

  /** True for a class of the active ensemble, one ever predicted, or one people have already used. */
  isKnownClass(label: string): boolean {
    return this.knownClasses().includes(label) || this.rows.labelSeen(label);
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
    const row = this.rows.item(request.sha256);
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
    const eventId = this.rows.recordLabel({ sha256: request.sha256, action: request.action, status, label, previousStatus: current.status, previousLabel: current.label, newClass, user: request.user, at });
    const record: LabelRecord = {
      eventId,
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
    for (const listener of this.listeners) listener(record);
    return record;
  }
}

function isReviewCode(code: string): code is ReviewErrorCode {
  return code === 'PW_E_REVIEW_REQUEST' || code === 'PW_E_REVIEW_NOT_FOUND' || code === 'PW_E_REVIEW_CONFLICT' || code === 'PW_E_REVIEW_NEW_CLASS';
}

function clampInt(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.trunc(n)));
}

function toItem(r: ReviewItemRow): ReviewItem {
  return {
    sha256: r.sha256,
    relPath: r.rel_path,
    width: r.width,
    height: r.height,
    area: r.area,
    areaUm2: r.area_um2,
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

function toRecord(r: LabelEventRow): LabelRecord {
  return {
    eventId: r.id,
    sha256: r.sha256,
    relPath: r.rel_path,
    action: r.action as LabelAction,
    status: r.status,
    label: r.label,
    previousStatus: r.previous_status as LabelStatus,
    previousLabel: r.previous_label,
    newClass: r.new_class === 1,
    user: r.user,
    at: r.at,
  };
}
