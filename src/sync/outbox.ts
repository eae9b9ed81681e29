// The sync outbox in SQLite: rows are queued inside the transactions that store the results they
// carry, claimed by the sender, marked acknowledged by the broker, and deleted once a validated
// shore status reports holding them. Every function here is synchronous; none awaits inside a
// transaction.
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from '../store/db.js';
import { windowStartOf } from '../store/windows.js';
import type { ClassifiedFrame } from '../types.js';
import {
  LABEL_STATES,
  PRIORITY,
  round4,
  type CountsPayload,
  type LabelPayload,
  type LabelState,
  type ModelPayload,
  type PredictionPayload,
  type RecordKind,
  type RejectsPayload,
  type ShoreStatus,
  type ThumbnailPayload,
} from './records.js';

/** A label state change, as the review stage hands it over. */
export interface LabelRecord {
  instrument: string;
  /** The frame's SHA-256. */
  sha256: string;
  state: LabelState;
  label: string;
  /** Who recorded it; null if unknown. */
  by?: string | null;
  /** ms since epoch; default now. */
  at?: number;
}

export interface EnqueueLabelOptions {
  /** Also queue a thumbnail request for validated and dubious frames (sync.thumbnails). */
  thumbnails?: boolean;
  now?: number;
}

/** An outbox row as the sender sees it. */
export interface OutboxRow {
  seq: number;
  kind: RecordKind;
  key: string;
  payload: string;
  bytes: number;
  createdAt: number;
  sentAt: number | null;
}

export interface OutboxKindStatus {
  records: number;
  bytes: number;
}

/** What `plankwatch sync status` shows. */
export interface OutboxStatus {
  instrument: string;
  /** Not yet acknowledged by the broker. */
  queued: { records: number; bytes: number; byKind: Partial<Record<RecordKind, OutboxKindStatus>> };
  /** Acknowledged by the broker, not yet confirmed by the shore's gap report. */
  awaitingShore: number;
  lastSeq: number;
  lastAckedSeq: number;
  shoreThrough: number;
  shoreMissing: number;
  shoreReportAt: number | null;
  ackedRecords: number;
  ackedBatches: number;
  wireBytes: number;
  rawBytes: number;
  /** MQTT bytes on the wire per prediction (ROI) record, averaged over everything acknowledged. */
  bytesPerRoi: number | null;
  /** Raw JSON bytes / wire bytes. */
  compressionRatio: number | null;
  /** Recent acknowledged throughput, bytes per second (moving average). */
  rateBps: number;
  lastAckAt: number | null;
  /** Bytes sent today (UTC). */
  todayBytes: number;
}

interface Statements {
  nextSeq: Statement<[string], { last_seq: number }>;
  initSeq: Statement<[string]>;
  unsentByKey: Statement<[string, string, string], { seq: number }>;
  insert: Statement<[string, number, string, number, string, string, number, number, number]>;
  update: Statement<[string, number, number, string, number]>;
  countsOf: Statement<[number, number], { label: string; count: number }>;
  rejectsBetween: Statement<[number, number], { code: string; n: number }>;
  modelSeen: Statement<[string, number], { ensemble_version: string }>;
}

const cache = new WeakMap<SqliteDatabase, Statements>();

function statements(db: SqliteDatabase): Statements {
  let s = cache.get(db);
  if (s) return s;
  s = {
    nextSeq: db.prepare(`UPDATE sync_sequence SET last_seq = last_seq + 1 WHERE instrument = ? RETURNING last_seq`),
    initSeq: db.prepare(`INSERT INTO sync_sequence (instrument, last_seq) VALUES (?, 0) ON CONFLICT DO NOTHING`),
    unsentByKey: db.prepare(
      `SELECT seq FROM sync_outbox WHERE instrument = ? AND kind = ? AND key = ? AND sent_at IS NULL ORDER BY seq DESC LIMIT 1`,
    ),
    insert: db.prepare(
      `INSERT INTO sync_outbox (instrument, seq, kind, priority, key, payload, bytes, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    update: db.prepare(`UPDATE sync_outbox SET payload = ?, bytes = ?, updated_at = ? WHERE instrument = ? AND seq = ?`),
    countsOf: db.prepare(`SELECT label, count FROM counts WHERE window_ms = ? AND window_start = ? ORDER BY label`),
    rejectsBetween: db.prepare(`SELECT code, count(*) AS n FROM rejects WHERE at >= ? AND at < ? GROUP BY code ORDER BY code`),
    modelSeen: db.prepare(`INSERT INTO sync_models (ensemble_version, at) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING ensemble_version`),
  };
  cache.set(db, s);
  return s;
}

function allocateSeq(s: Statements, instrument: string): number {
  let row = s.nextSeq.get(instrument);
  if (!row) {
    s.initSeq.run(instrument);
    row = s.nextSeq.get(instrument);
  }
  if (!row) throw new Error('sync_sequence: no row after insert');
  return row.last_seq;
}

/** Appends an immutable record with the next sequence number. */
function append(s: Statements, instrument: string, kind: RecordKind, key: string, payload: unknown, now: number): number {
  const json = JSON.stringify(payload);
  const seq = allocateSeq(s, instrument);
  s.insert.run(instrument, seq, kind, PRIORITY[kind], key, json, Buffer.byteLength(json), now, now);
  return seq;
}

/**
 * For records that describe a state that changes (a window's counts): rewrites the queued row if it
 * has not been sent yet, so a busy window costs one record, not one per batch; once a row has gone
 * out its content is frozen and the new state gets a new sequence number.
 */
function upsertUnsent(s: Statements, instrument: string, kind: RecordKind, key: string, payload: unknown, now: number): void {
  const existing = s.unsentByKey.get(instrument, kind, key);
  if (!existing) {
    append(s, instrument, kind, key, payload, now);
    return;
  }
  const json = JSON.stringify(payload);
  s.update.run(json, Buffer.byteLength(json), now, instrument, existing.seq);
}

export interface ClassifiedContext {
  instrument: string;
  /** The store's counts window. */
  windowMs: number;
  now?: number;
}

/**
 * Queues, inside the store's recordClassified transaction: one prediction record per frame, the
 * absolute counts of every window touched, and each ensemble version not queued before.
 */
export function enqueueClassified(db: SqliteDatabase, ctx: ClassifiedContext, stored: readonly ClassifiedFrame[]): void {
  const s = statements(db);
  const now = Math.trunc(ctx.now ?? Date.now());
  const windows = new Set<number>();
  for (const item of stored) {
    const p = item.prediction;
    if (s.modelSeen.get(p.ensembleVersion, now)) {
      const model: ModelPayload = { ensembleVersion: p.ensembleVersion, members: p.members.map((m) => ({ member: m.member, version: m.version })) };
      append(s, ctx.instrument, 'model', p.ensembleVersion, model, now);
    }
  }
  for (const item of stored) {
    const { frame, prediction: p } = item;
    const f = frame.file;
    const classifiedAt = Math.trunc(item.classifiedAt);
    const payload: PredictionPayload = {
      sha256: f.sha256,
      relPath: f.relPath,
      bytes: f.bytes,
      width: frame.width,
      height: frame.height,
      area: frame.area,
      format: frame.format,
      arrivedAt: Math.trunc(f.arrivedAt),
      classifiedAt,
      ensembleVersion: p.ensembleVersion,
      label: p.label,
      probability: round4(p.probability),
      margin: round4(p.margin),
      disagreement: round4(p.disagreement),
      topK: p.topK.map((c) => [c.label, round4(c.probability)]),
      members: p.members.map((m) => [m.member, m.version, m.topK[0]?.label ?? '', round4(m.topK[0]?.probability ?? 0)]),
    };
    append(s, ctx.instrument, 'prediction', `${f.sha256}:${p.ensembleVersion}`, payload, now);
    windows.add(windowStartOf(classifiedAt, ctx.windowMs));
  }
  for (const start of windows) {
    const rows = s.countsOf.all(ctx.windowMs, start);
    const counts: Record<string, number> = {};
    let total = 0;
    for (const r of rows) {
      counts[r.label] = r.count;
      total += r.count;
    }
    const payload: CountsPayload = { windowMs: ctx.windowMs, windowStart: start, windowEnd: start + ctx.windowMs, total, counts };
    upsertUnsent(s, ctx.instrument, 'counts', `${ctx.windowMs}:${start}`, payload, now);
  }
}

/** Queues, inside the store's recordReject transaction, the reject summary of the reject's window. */
export function enqueueReject(db: SqliteDatabase, ctx: ClassifiedContext, reject: { at: number }): void {
  const s = statements(db);
  const now = Math.trunc(ctx.now ?? Date.now());
  const start = windowStartOf(reject.at, ctx.windowMs);
  const byCode: Record<string, number> = {};
  let total = 0;
  for (const r of s.rejectsBetween.all(start, start + ctx.windowMs)) {
    byCode[r.code] = r.n;
    total += r.n;
  }
  const payload: RejectsPayload = { windowMs: ctx.windowMs, windowStart: start, windowEnd: start + ctx.windowMs, total, byCode };
  upsertUnsent(s, ctx.instrument, 'rejects', `${ctx.windowMs}:${start}`, payload, now);
}

/**
 * Queues a label state change for the shore. Call it INSIDE the transaction that records the label
 * (review stage), so both commit together. With `thumbnails`, a validated or dubious frame also
 * queues a thumbnail, made from the image on disk when it is sent. Throws on an unknown state.
 */
export function enqueueLabel(db: SqliteDatabase, record: LabelRecord, options: EnqueueLabelOptions = {}): void {
  if (!LABEL_STATES.includes(record.state)) throw new Error(`unknown label state "${String(record.state)}"`);
  if (!/^[0-9a-f]{64}$/.test(record.sha256)) throw new Error('sha256 must be 64 lowercase hex digits');
  const s = statements(db);
  const now = Math.trunc(options.now ?? Date.now());
  const at = Math.trunc(record.at ?? now);
  const by = record.by ?? null;
  const payload: LabelPayload = { sha256: record.sha256, state: record.state, label: record.label, by, at };
  append(s, record.instrument, 'label', `${record.sha256}@${at}`, payload, now);
  if (options.thumbnails && record.state !== 'predicted') {
    const relPath = (db.prepare(`SELECT rel_path FROM frames WHERE sha256 = ?`).get(record.sha256) as { rel_path: string } | undefined)?.rel_path ?? '';
    const thumb: ThumbnailPayload = { sha256: record.sha256, relPath, state: record.state };
    upsertUnsent(s, record.instrument, 'thumbnail', record.sha256, thumb, now);
  }
}

/** A shore status made this far ahead of the ship's clock is refused (it would shut out every later one). */
const FUTURE_TOLERANCE_MS = 24 * 3600_000;

/** Why a shore status was refused whole. */
export interface ShoreStatusRefusal {
  reason: 'over-claim' | 'duplicate' | 'stale' | 'future';
  detail: string;
  /** For 'over-claim': the highest seq this ship ever sent. */
  highestSent?: number;
  /** For 'stale' and 'duplicate': how much older than the last status applied. */
  olderByMs?: number;
}

/** What applying a shore status did; with `refused`, nothing. */
export interface ShoreStatusOutcome {
  deleted: number;
  resent: number;
  refused?: ShoreStatusRefusal;
}

/** The sender's and the status command's view of the outbox for one instrument. */
export class Outbox {
  private readonly db: SqliteDatabase;
  private readonly instrument: string;
  private readonly s: {
    pending: Statement<[string, number, number], OutboxRow>;
    markSent: Statement<[number, string, number]>;
    markAcked: Statement<[number, string, number]>;
    resend: Statement<[string, number, number, number]>;
    deleteConfirmed: Statement<[string, number]>;
    maxSent: Statement<[string], { seq: number }>;
    ackedBefore: Statement<[string, number, number], { seq: number }>;
    initProgress: Statement<[string]>;
    progress: Statement<[string], ProgressRow>;
    addAcked: Statement<[number, number, number, number, number, number, number, number, string]>;
    setRate: Statement<[number, string]>;
    setShore: Statement<[number, number, number, string]>;
    daily: Statement<[string], { bytes: number }>;
    addDaily: Statement<[string, number]>;
    queuedByKind: Statement<[string], { kind: RecordKind; n: number; bytes: number }>;
    awaiting: Statement<[string], { n: number }>;
    lastSeq: Statement<[string], { last_seq: number }>;
  };

  constructor(db: SqliteDatabase, instrument: string) {
    this.db = db;
    this.instrument = instrument;
    this.s = {
      pending: db.prepare(
        `SELECT seq, kind, key, payload, bytes, created_at AS createdAt, sent_at AS sentAt FROM sync_outbox
         WHERE instrument = ? AND acked_at IS NULL
           AND (kind NOT IN ('counts', 'rejects') OR sent_at IS NOT NULL OR updated_at <= ?)
         ORDER BY priority, seq LIMIT ?`,
      ),
      markSent: db.prepare(`UPDATE sync_outbox SET sent_at = ? WHERE instrument = ? AND seq = ? AND sent_at IS NULL`),
      markAcked: db.prepare(`UPDATE sync_outbox SET acked_at = ? WHERE instrument = ? AND seq = ?`),
      resend: db.prepare(`UPDATE sync_outbox SET acked_at = NULL WHERE instrument = ? AND seq BETWEEN ? AND ? AND acked_at <= ?`),
      deleteConfirmed: db.prepare(`DELETE FROM sync_outbox WHERE instrument = ? AND seq <= ? AND sent_at IS NOT NULL AND acked_at IS NOT NULL`),
      maxSent: db.prepare(`SELECT seq FROM sync_outbox WHERE instrument = ? AND sent_at IS NOT NULL ORDER BY seq DESC LIMIT 1`),
      ackedBefore: db.prepare(`SELECT seq FROM sync_outbox WHERE instrument = ? AND seq > ? AND acked_at <= ? ORDER BY seq`),
      initProgress: db.prepare(`INSERT INTO sync_progress (instrument) VALUES (?) ON CONFLICT DO NOTHING`),
      progress: db.prepare(`SELECT * FROM sync_progress WHERE instrument = ?`),
      addAcked: db.prepare(
        `UPDATE sync_progress SET last_acked_seq = max(last_acked_seq, ?), acked_records = acked_records + ?,
           acked_predictions = acked_predictions + ?, acked_batches = acked_batches + 1, wire_bytes = wire_bytes + ?,
           raw_bytes = raw_bytes + ?, prediction_wire_bytes = prediction_wire_bytes + ?, rate_bps = ?, last_ack_at = ?
         WHERE instrument = ?`,
      ),
      setRate: db.prepare(`UPDATE sync_progress SET rate_bps = ? WHERE instrument = ?`),
      setShore: db.prepare(`UPDATE sync_progress SET shore_through = ?, shore_missing = ?, shore_at = ? WHERE instrument = ?`),
      daily: db.prepare(`SELECT bytes FROM sync_daily WHERE day = ?`),
      addDaily: db.prepare(`INSERT INTO sync_daily (day, bytes) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET bytes = bytes + excluded.bytes`),
      queuedByKind: db.prepare(
        `SELECT kind, count(*) AS n, coalesce(sum(bytes), 0) AS bytes FROM sync_outbox WHERE instrument = ? AND acked_at IS NULL GROUP BY kind`,
      ),
      awaiting: db.prepare(`SELECT count(*) AS n FROM sync_outbox WHERE instrument = ? AND acked_at IS NOT NULL`),
      lastSeq: db.prepare(`SELECT last_seq FROM sync_sequence WHERE instrument = ?`),
    };
    this.s.initProgress.run(instrument);
  }

  /**
   * Takes up to `maxRecords` rows to send, in priority then sequence order, skipping `exclude`
   * (in flight) and counts/rejects rows changed after `holdBefore` that have never been sent, stopping
   * once `maxRawBytes` is reached (at least one row). Marks them sent in the same step, so their
   * content is frozen from here on.
   */
  claim(options: { maxRecords: number; maxRawBytes: number; exclude: ReadonlySet<number>; holdBefore: number; now: number }): OutboxRow[] {
    return this.db.transaction(() => {
      const rows = this.s.pending.all(this.instrument, options.holdBefore, options.maxRecords + options.exclude.size);
      const out: OutboxRow[] = [];
      let bytes = 0;
      for (const row of rows) {
        if (options.exclude.has(row.seq)) continue;
        if (out.length > 0 && bytes + row.bytes > options.maxRawBytes) break;
        out.push(row);
        bytes += row.bytes;
        if (out.length >= options.maxRecords) break;
      }
      for (const row of out) {
        if (row.sentAt === null) this.s.markSent.run(options.now, this.instrument, row.seq);
      }
      return out;
    }).immediate();
  }

  /** The broker acknowledged a batch: its rows are done (kept until the shore confirms them). */
  markAcked(ack: {
    seqs: readonly number[];
    predictions: number;
    /** The share of wireBytes that carried prediction records (by their share of the raw JSON). */
    predictionWireBytes: number;
    wireBytes: number;
    rawBytes: number;
    rateBps: number;
    now: number;
  }): void {
    this.db.transaction(() => {
      let maxSeq = 0;
      for (const seq of ack.seqs) {
        this.s.markAcked.run(ack.now, this.instrument, seq);
        maxSeq = Math.max(maxSeq, seq);
      }
      this.s.addAcked.run(maxSeq, ack.seqs.length, ack.predictions, ack.wireBytes, ack.rawBytes, ack.predictionWireBytes, ack.rateBps, ack.now, this.instrument);
    }).immediate();
  }

  /**
   * Applies a shore gap report that has been parsed and, where there is a key, verified (see
   * status.ts). It is refused whole, changing nothing, when it claims a seq beyond the highest ever
   * sent ('over-claim'), is not newer than the last one applied ('duplicate', 'stale': a replay or
   * an older message redelivered), or was made more than a day ahead of this clock ('future'). Else
   * rows the shore holds (seq <= contiguousThrough) are deleted, but only those sent and
   * acknowledged by the broker: a row never sent, or sent and not acknowledged, stays and goes out
   * (again). Rows the broker acknowledged more than `resendAfterMs` before the report was made, and
   * that the shore still lacks, are queued again. Returns how many of each.
   */
  applyShoreStatus(status: ShoreStatus, resendAfterMs: number, now = Date.now()): ShoreStatusOutcome {
    return this.db.transaction((): ShoreStatusOutcome => {
      const refuse = (reason: ShoreStatusRefusal['reason'], detail: string, extra: Omit<ShoreStatusRefusal, 'reason' | 'detail'> = {}): ShoreStatusOutcome => ({
        deleted: 0,
        resent: 0,
        refused: { reason, detail, ...extra },
      });
      const p = this.s.progress.get(this.instrument);
      const highestSent = Math.max(p?.last_acked_seq ?? 0, this.s.maxSent.get(this.instrument)?.seq ?? 0);
      if (status.maxSeq > highestSent || status.contiguousThrough > highestSent) {
        return refuse('over-claim', `the status claims seqs up to ${status.maxSeq}, the highest ever sent is ${highestSent}`, { highestSent });
      }
      const last = p?.shore_at ?? null;
      if (last !== null && status.generatedAt <= last) {
        return refuse(status.generatedAt === last ? 'duplicate' : 'stale', `made at ${status.generatedAt}, not after the last status applied (${last})`, { olderByMs: last - status.generatedAt });
      }
      if (status.generatedAt > now + FUTURE_TOLERANCE_MS) return refuse('future', `made at ${status.generatedAt}, more than a day ahead of this clock (${now})`);
      const deleted = this.s.deleteConfirmed.run(this.instrument, status.contiguousThrough).changes;
      const cutoff = status.generatedAt - resendAfterMs;
      let resent = 0;
      for (const [from, to] of status.missing) resent += this.s.resend.run(this.instrument, from, to, cutoff).changes;
      // Above the shore's highest seq nothing is known to be there. With a truncated list, only
      // what lies before the last listed range is certain.
      if (!status.truncated) {
        for (const row of this.s.ackedBefore.all(this.instrument, status.maxSeq, cutoff)) {
          resent += this.s.resend.run(this.instrument, row.seq, row.seq, cutoff).changes;
        }
      }
      const missing = status.missing.reduce((n, [a, b]) => n + (b - a + 1), 0);
      this.s.setShore.run(status.contiguousThrough, missing, status.generatedAt, this.instrument);
      return { deleted, resent };
    }).immediate();
  }

  /** MQTT bytes sent on a UTC day (YYYY-MM-DD). */
  dailyBytes(day: string): number {
    return this.s.daily.get(day)?.bytes ?? 0;
  }

  addDailyBytes(day: string, bytes: number): void {
    this.s.addDaily.run(day, bytes);
  }

  setRate(rateBps: number): void {
    this.s.setRate.run(rateBps, this.instrument);
  }

  status(now = Date.now()): OutboxStatus {
    const byKind: Partial<Record<RecordKind, OutboxKindStatus>> = {};
    let records = 0;
    let bytes = 0;
    for (const r of this.s.queuedByKind.all(this.instrument)) {
      byKind[r.kind] = { records: r.n, bytes: r.bytes };
      records += r.n;
      bytes += r.bytes;
    }
    const p = this.s.progress.get(this.instrument);
    const wire = p?.wire_bytes ?? 0;
    const raw = p?.raw_bytes ?? 0;
    return {
      instrument: this.instrument,
      queued: { records, bytes, byKind },
      awaitingShore: this.s.awaiting.get(this.instrument)?.n ?? 0,
      lastSeq: this.s.lastSeq.get(this.instrument)?.last_seq ?? 0,
      lastAckedSeq: p?.last_acked_seq ?? 0,
      shoreThrough: p?.shore_through ?? 0,
      shoreMissing: p?.shore_missing ?? 0,
      shoreReportAt: p?.shore_at ?? null,
      ackedRecords: p?.acked_records ?? 0,
      ackedBatches: p?.acked_batches ?? 0,
      wireBytes: wire,
      rawBytes: raw,
      bytesPerRoi: p && p.acked_predictions > 0 ? p.prediction_wire_bytes / p.acked_predictions : null,
      compressionRatio: wire > 0 ? raw / wire : null,
      rateBps: p?.rate_bps ?? 0,
      lastAckAt: p?.last_ack_at ?? null,
      todayBytes: this.dailyBytes(utcDay(now)),
    };
  }
}

interface ProgressRow {
  last_acked_seq: number;
  shore_through: number;
  shore_missing: number;
  shore_at: number | null;
  acked_records: number;
  acked_predictions: number;
  acked_batches: number;
  wire_bytes: number;
  raw_bytes: number;
  prediction_wire_bytes: number;
  rate_bps: number;
  last_ack_at: number | null;
}

/** `YYYY-MM-DD` of an instant, in UTC. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
