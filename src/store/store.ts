// The local results store: frames, where they were seen, predictions, live counts and rejects, in
// one SQLite file. All writes are synchronous and transactional; nothing here awaits.
import { statSync } from 'node:fs';
import { isDiskFull, isPlankwatchError, PlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClassifiedFrame, IncomingFile, Part } from '../types.js';
import { migrate, openDatabase, schemaVersion, type SqliteDatabase } from './db.js';
import { deferredPreparer } from './lazy-statements.js';
import { createFinetuneRepository, type FinetuneRepository } from './finetune-repository.js';
import { MIGRATIONS } from './migrations.js';
import { createNavRepository, type NavRepository } from './nav-repository.js';
import { createCameraFrameRepository, type CameraFrameRepository } from './camera-frame-repository.js';
import { createOutboxRepository, type OutboxRepository } from './outbox-repository.js';
import { PublishLog } from './publish-log.js';
import { createReviewRepository, type ReviewRepository } from './review-repository.js';
import { groupWindows, windowStartOf, type WindowCounts } from './windows.js';
import { ms, prepareStatements, prepareTotals, QUARANTINED, type Statements } from './store-statements.js';
import type { CountsSince, FrameRecord, RecordResult, RejectRecord, SourceOutcome, StoreOptions, StoreStatus, StoreTotals } from './store-types.js';

export type { WindowCounts } from './windows.js';
export type { CountsSince, FrameRecord, RecordResult, RejectRecord, SourceOutcome, StoreOptions, StoreStatus, StoreTotals } from './store-types.js';

/**
 * The SQLite-backed store. `open()` opens the file (WAL) and migrates it; every record call is one
 * transaction, so a frame, its predictions and its count increments commit together or not at all.
 */
export class Store implements Part {
  readonly name = 'store';
  private readonly options: StoreOptions;
  private readonly log: Logger;
  private db: SqliteDatabase | undefined;
  private stmts: Statements | undefined;
  private totalsStmts: ReturnType<typeof prepareTotals> | undefined;
  /** The later stages' tables, each prepared when first asked for. */
  private repositories: { review?: ReviewRepository; outbox?: OutboxRepository; finetune?: FinetuneRepository; publishLog?: PublishLog; nav?: NavRepository; cameraFrames?: CameraFrameRepository } = {};

  constructor(options: StoreOptions) {
    this.options = options;
    this.log = options.logger.child({ module: 'store' });
  }

  /**
   * Opens the database, applies pending migrations (not when readonly) and prepares statements.
   * Throws PW_E_DB.
   */
  open(): void {
    if (this.db) return;
    const { path, readonly } = this.options;
    const db = openDatabase(path, { busyTimeoutMs: this.options.busyTimeoutMs, readonly: readonly ?? false });
    try {
      if (readonly) {
        const version = schemaVersion(db);
        if (version < 1 || version > MIGRATIONS.length) {
          throw new PlankwatchError(
            'PW_E_DB',
            version < 1
              ? `${path} is not a plankwatch database (schema version 0); check store.path.`
              : `The database has schema version ${version} but this plankwatch knows only up to ${MIGRATIONS.length}; use a newer plankwatch.`,
          );
        }
      } else {
        const started = performance.now();
        const applied = migrate(db, MIGRATIONS);
        if (applied.length > 0) this.log.info({ applied, path, ms: Math.round(performance.now() - started) }, 'database schema migrated');
      }
      // Read-only, the schema may be older than this code's writes: prepare each statement when used.
      this.stmts = prepareStatements(readonly ? deferredPreparer(db) : db);
      if (this.stmts.hasTotals.get()) this.totalsStmts = prepareTotals(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
  }

  /** Closes the database; safe to call twice. */
  close(): void {
    if (!this.db) return;
    this.db.close();
    this.db = undefined;
    this.stmts = undefined;
    this.totalsStmts = undefined;
    this.repositories = {};
  }

  /** As a part of the daemon: open(). */
  start(): void {
    this.open();
  }

  /** As a part of the daemon: close(). */
  stop(): void {
    this.close();
  }

  /**
   * The open connection: for this folder's repositories, and for tests. Other stages ask for a
   * repository instead. Throws if not open.
   */
  get database(): SqliteDatabase {
    return this.conn().db;
  }

  /** The review tables (migration 3), for the review stage. Throws if not open. */
  reviewRepository(): ReviewRepository {
    return (this.repositories.review ??= createReviewRepository(this.conn().db));
  }

  /** The sync outbox's tables (migration 4), for the sync stage. Throws if not open. */
  outboxRepository(): OutboxRepository {
    return (this.repositories.outbox ??= createOutboxRepository(this.conn().db));
  }

  /** The fine-tuning tables (migration 5), for the fine-tuning stage. Throws if not open. */
  finetuneRepository(): FinetuneRepository {
    return (this.repositories.finetune ??= createFinetuneRepository(this.conn().db));
  }

  /** The navigation and environment tables (migration 7), for the nav stage and the exports. Throws if not open. */
  navRepository(): NavRepository {
    return (this.repositories.nav ??= createNavRepository(this.conn().db));
  }

  /** The camera frame tables (migration 8), for the segment stage and the review page. Throws if not open. */
  cameraFrameRepository(): CameraFrameRepository {
    return (this.repositories.cameraFrames ??= createCameraFrameRepository(this.conn().db));
  }

  /** The publisher's sequence number and acknowledged windows, in this store's counts windows. Throws if not open. */
  publishLog(): PublishLog {
    return (this.repositories.publishLog ??= new PublishLog(this.conn().db, this.options.countsWindowMs));
  }

  /**
   * Stores a batch of classified frames in one transaction: frame row, prediction, member
   * predictions, the count increment of its window, and its source path. A frame whose sha256 is
   * already stored is not inserted again (only its path is recorded as a source), so replaying a
   * batch after a crash never doubles a row or a count.
   */
  recordClassified(batch: readonly ClassifiedFrame[]): RecordResult {
    const { db, s } = this.conn();
    const windowMs = this.options.countsWindowMs;
    const result: RecordResult = { stored: [], alreadyPresent: [] };
    const run = db.transaction((items: readonly ClassifiedFrame[]) => {
      const now = this.now();
      let duplicates = 0;
      for (const item of items) {
        const { frame, prediction } = item;
        const f = frame.file;
        const classifiedAt = ms(item.classifiedAt);
        const row = s.insertFrame.get(
          f.sha256, f.relPath, f.bytes, frame.width, frame.height, frame.area, frame.areaUm2 ?? null, frame.format,
          ms(f.arrivedAt), classifiedAt, now,
        );
        if (!row) {
          if (this.addSource(s, f, now) === 'new') duplicates++;
          result.alreadyPresent.push(item);
          continue;
        }
        const p = s.insertPrediction.get(
          row.id, prediction.ensembleVersion, prediction.label, prediction.probability,
          prediction.margin, prediction.disagreement, JSON.stringify(prediction.topK), classifiedAt,
        );
        if (!p) throw new PlankwatchError('PW_E_DB', 'INSERT … RETURNING gave no row');
        for (const m of prediction.members) {
          const top = m.topK[0];
          s.insertMember.run(p.id, m.member, m.version, top?.label ?? '', top?.probability ?? 0, JSON.stringify(m.topK));
        }
        const start = windowStartOf(classifiedAt, windowMs);
        s.bumpCount.run(windowMs, start, start + windowMs, prediction.label);
        s.upsertSource.run(f.sha256, f.relPath, 'original', f.bytes, f.mtimeMs === undefined ? null : ms(f.mtimeMs), now);
        result.stored.push(item);
      }
      this.bumpTotal('classified', result.stored.length);
      this.bumpTotal('duplicates', duplicates);
      if (result.stored.length > 0) this.options.onRecordClassified?.(this.outboxRepository(), result.stored);
    });
    this.write(() => run.immediate(batch));
    return result;
  }

  /**
   * Records `file` as another arrival of bytes already stored (same sha256): no classification, no
   * count, one more duplicate in the totals (not when this path was recorded already at this size
   * and mtime: a replay). Returns false, recording nothing, when no frame with that sha256 exists.
   */
  recordDuplicate(file: IncomingFile): boolean {
    const { db, s } = this.conn();
    return this.write(() =>
      db.transaction(() => {
        const added = this.addSource(s, file, this.now());
        if (added === 'new') this.bumpTotal('duplicates', 1);
        return added !== false;
      }).immediate(),
    );
  }

  /** Records a rejected file; returns the reject's id (for setQuarantinedPath once moved). */
  recordReject(reject: RejectRecord): number {
    const { db, s } = this.conn();
    const at = ms(reject.at ?? this.now());
    return this.write(() => db.transaction(() => {
      const row = s.insertReject.get(
        reject.relPath, reject.sha256 ?? null, reject.bytes ?? null,
        reject.mtimeMs == null ? null : ms(reject.mtimeMs), reject.code, reject.detail,
        reject.quarantinedPath ?? null, at,
      );
      if (!row) throw new PlankwatchError('PW_E_DB', 'INSERT … RETURNING gave no row');
      this.bumpTotal(`${QUARANTINED}${reject.code}`, 1);
      this.options.onRecordReject?.(this.outboxRepository(), { ...reject, id: row.id, at });
      return row.id;
    }).immediate());
  }

  /** Notes where a rejected file was moved. */
  setQuarantinedPath(rejectId: number, quarantinedPath: string): void {
    const { s } = this.conn();
    this.write(() => s.setQuarantined.run(quarantinedPath, rejectId));
  }

  /**
   * How a path, at this size and mtime, was settled, or null if never: a rescan skips known paths.
   * An mtime recorded as unknown matches any mtime.
   */
  sourceOutcome(relPath: string, size: number, mtimeMs: number): SourceOutcome | null {
    const { s } = this.conn();
    const src = s.sourceRole.get(relPath, size, ms(mtimeMs));
    if (src) return src.role === 'original' ? 'processed' : 'duplicate';
    return s.rejectedSource.get(relPath, size, ms(mtimeMs)) ? 'quarantined' : null;
  }

  /** True when this path at this size and mtime is already stored, as a frame source or a reject. */
  isKnownSource(relPath: string, size: number, mtimeMs: number): boolean {
    return this.sourceOutcome(relPath, size, mtimeMs) !== null;
  }

  /** True when a frame with these bytes is stored. */
  hasFrame(sha256: string): boolean {
    return this.conn().s.hasFrame.get(sha256) !== undefined;
  }

  /** Counts of the window starting at `windowStart` (any instant inside it is accepted). */
  countsForWindow(windowStart: number): WindowCounts {
    const windowMs = this.options.countsWindowMs;
    const start = windowStartOf(windowStart, windowMs);
    const [w] = groupWindows(this.conn().s.countsOf.all(windowMs, start));
    return w ?? { windowStart: start, windowEnd: start + windowMs, total: 0, counts: {} };
  }

  /** Totals per label and per window, from the window holding `sinceMs` to the latest. */
  countsSince(sinceMs: number): CountsSince {
    const windowMs = this.options.countsWindowMs;
    const since = windowStartOf(sinceMs, windowMs);
    const windows = groupWindows(this.conn().s.countsFrom.all(windowMs, since));
    const totals: Record<string, number> = {};
    let total = 0;
    for (const w of windows) {
      for (const [label, n] of Object.entries(w.counts)) totals[label] = (totals[label] ?? 0) + n;
      total += w.total;
    }
    return { since, total, totals, windows };
  }

  /** The `n` latest windows that have any count, oldest first. */
  recentWindows(n: number): WindowCounts[] {
    const { s } = this.conn();
    const windowMs = this.options.countsWindowMs;
    const starts = s.recentStarts.all(windowMs, Math.max(0, Math.trunc(n)));
    const oldest = starts.at(-1);
    if (oldest === undefined) return [];
    return groupWindows(s.countsFrom.all(windowMs, oldest.window_start));
  }

  /**
   * How files were settled, all time: one small read of the `totals` table. On a database at an
   * older schema opened read-only, the same figures counted from the rows (as migration 6 seeds them).
   */
  totals(): StoreTotals {
    const { s } = this.conn();
    const out: StoreTotals = { classified: 0, duplicates: 0, quarantined: { total: 0, byCode: {} } };
    const quarantined = (code: string, n: number): void => {
      out.quarantined.byCode[code] = n;
      out.quarantined.total += n;
    };
    if (!this.totalsStmts) {
      out.classified = s.frameCount.get()?.n ?? 0;
      out.duplicates = s.duplicateCount.get()?.n ?? 0;
      for (const r of s.rejectsByCode.all()) quarantined(r.code, r.n);
      return out;
    }
    for (const { name, value } of this.totalsStmts.all.all()) {
      if (name === 'classified') out.classified = value;
      else if (name === 'duplicates') out.duplicates = value;
      else if (name.startsWith(QUARANTINED)) quarantined(name.slice(QUARANTINED.length), value);
    }
    return out;
  }

  /** Row counts, the totals and the file size, for `plankwatch status`. */
  status(): StoreStatus {
    const { db, s } = this.conn();
    const totals = this.totals();
    return {
      schemaVersion: schemaVersion(db),
      frames: s.frameCount.get()?.n ?? 0,
      predictions: s.predictionCount.get()?.n ?? 0,
      duplicates: totals.duplicates,
      rejects: totals.quarantined,
      dbBytes: this.fileBytes(),
    };
  }

  /** Frames stored without any prediction (for re-classification), oldest first. */
  framesWithoutPrediction(limit = 1000): FrameRecord[] {
    return this.conn().s.framesWithoutPrediction.all(limit).map((r) => ({
      id: r.id,
      sha256: r.sha256,
      relPath: r.rel_path,
      bytes: r.bytes,
      width: r.width,
      height: r.height,
      area: r.area,
      format: r.format,
      arrivedAt: r.arrived_at,
      classifiedAt: r.classified_at,
      storedAt: r.stored_at,
    }));
  }

  /**
   * Records a path of stored bytes. 'new' when this is a new arrival (the path was not recorded for
   * these bytes, or with another size or mtime), 'seen' when it is a replay, false when no frame
   * holds these bytes.
   */
  private addSource(s: Statements, file: IncomingFile, now: number): 'new' | 'seen' | false {
    const frame = s.frameBySha.get(file.sha256);
    if (!frame) return false;
    const role = frame.rel_path === file.relPath ? 'original' : 'duplicate';
    const mtime = file.mtimeMs === undefined ? null : ms(file.mtimeMs);
    const seen = s.sourceSeen.get(file.relPath, file.sha256, file.bytes, mtime) !== undefined;
    s.upsertSource.run(file.sha256, file.relPath, role, file.bytes, mtime, now);
    return seen ? 'seen' : 'new';
  }

  /**
   * Runs a write; a write refused for lack of space (SQLITE_FULL, ENOSPC, EDQUOT) is rethrown as
   * PW_E_DISK_FULL naming store.path, with nothing of it stored (the transaction rolled back).
   */
  private write<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!isDiskFull(err) || isPlankwatchError(err)) throw err;
      throw new PlankwatchError('PW_E_DISK_FULL', `writing the database ${this.options.path} (store.path): ${(err as Error).message}`, { cause: err });
    }
  }

  /** Raises a running total; inside the caller's transaction. */
  private bumpTotal(name: string, by: number): void {
    if (by > 0) this.totalsStmts?.bump.run(name, by);
  }

  private fileBytes(): number {
    const path = this.options.path;
    if (path === ':memory:' || path === '') return 0;
    let total = 0;
    for (const p of [path, `${path}-wal`]) {
      try {
        total += statSync(p).size;
      } catch {
        // The WAL file may not exist.
      }
    }
    return total;
  }

  private now(): number {
    return ms((this.options.now ?? Date.now)());
  }

  private conn(): { db: SqliteDatabase; s: Statements } {
    if (!this.db || !this.stmts) throw new PlankwatchError('PW_E_INTERNAL', 'Store is not open: call open() first');
    return { db: this.db, s: this.stmts };
  }
}
