// The sync outbox: rows are queued inside the transactions that store the results they carry,
// claimed by the sender, marked acknowledged by the broker, and deleted once a validated shore
// status reports holding them. The rows live in the store (its OutboxRepository); what goes in
// them and when is decided here. Every function here is synchronous; none awaits inside a
// transaction.
import { windowStartOf, type OutboxRepository, type OutboxRow } from '../store/index.js';
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
import { PlankwatchError } from '../errors.js';
import { enqueueCameraRois } from './camera-frame-records.js';

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

export type { OutboxRow };

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

/** Appends an immutable record with the next sequence number. */
function append(outbox: OutboxRepository, instrument: string, kind: RecordKind, key: string, payload: unknown, now: number): number {
  return outbox.append(instrument, kind, PRIORITY[kind], key, JSON.stringify(payload), now);
}

/**
 * For records that describe a state that changes (a window's counts): rewrites the queued row if it
 * has not been sent yet, so a busy window costs one record, not one per batch; once a row has gone
 * out its content is frozen and the new state gets a new sequence number.
 */
function upsertUnsent(outbox: OutboxRepository, instrument: string, kind: RecordKind, key: string, payload: unknown, now: number): void {
  if (!outbox.replaceUnsent(instrument, kind, key, JSON.stringify(payload), now)) append(outbox, instrument, kind, key, payload, now);
}

export interface ClassifiedContext {
  instrument: string;
  /** The store's counts window. */
  windowMs: number;
  now?: number;
}

/**
 * Queues, inside the store's recordClassified transaction: one prediction record per frame, the
 * absolute counts of every window touched, each ensemble version not queued before, and the place and measures
 * of each ROI cut from a whole camera frame.
 */
export function enqueueClassified(outbox: OutboxRepository, ctx: ClassifiedContext, stored: readonly ClassifiedFrame[]): void {
  const now = Math.trunc(ctx.now ?? Date.now());
  const windows = new Set<number>();
  for (const item of stored) {
    const p = item.prediction;
    if (outbox.firstSeen(p.ensembleVersion, now)) {
      const model: ModelPayload = { ensembleVersion: p.ensembleVersion, members: p.members.map((m) => ({ member: m.member, version: m.version })) };
      append(outbox, ctx.instrument, 'model', p.ensembleVersion, model, now);
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
      ...(frame.areaUm2 !== undefined ? { areaUm2: Math.round(frame.areaUm2 * 100) / 100 } : {}),
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
    append(outbox, ctx.instrument, 'prediction', `${f.sha256}:${p.ensembleVersion}`, payload, now);
    windows.add(windowStartOf(classifiedAt, ctx.windowMs));
  }
  // ROIs cut from a whole camera frame: their place and measures, next to their predictions.
  enqueueCameraRois(outbox, ctx.instrument, stored.map((item) => item.frame.file.sha256), now);
  for (const start of windows) {
    const rows = outbox.windowCounts(ctx.windowMs, start);
    const counts: Record<string, number> = {};
    let total = 0;
    for (const r of rows) {
      counts[r.label] = r.count;
      total += r.count;
    }
    const payload: CountsPayload = { windowMs: ctx.windowMs, windowStart: start, windowEnd: start + ctx.windowMs, total, counts };
    upsertUnsent(outbox, ctx.instrument, 'counts', `${ctx.windowMs}:${start}`, payload, now);
  }
}

/** Queues, inside the store's recordReject transaction, the reject summary of the reject's window. */
export function enqueueReject(outbox: OutboxRepository, ctx: ClassifiedContext, reject: { at: number }): void {
  const now = Math.trunc(ctx.now ?? Date.now());
  const start = windowStartOf(reject.at, ctx.windowMs);
  const byCode: Record<string, number> = {};
  let total = 0;
  for (const r of outbox.rejectCounts(start, start + ctx.windowMs)) {
    byCode[r.code] = r.n;
    total += r.n;
  }
  const payload: RejectsPayload = { windowMs: ctx.windowMs, windowStart: start, windowEnd: start + ctx.windowMs, total, byCode };
  upsertUnsent(outbox, ctx.instrument, 'rejects', `${ctx.windowMs}:${start}`, payload, now);
}

/**
 * Queues a label state change for the shore. Call it INSIDE the transaction that records the label
 * (review stage), so both commit together. With `thumbnails`, a validated or dubious frame also
 * queues a thumbnail, made from the image on disk when it is sent. Throws on an unknown state.
 */
export function enqueueLabel(outbox: OutboxRepository, record: LabelRecord, options: EnqueueLabelOptions = {}): void {
  if (!LABEL_STATES.includes(record.state)) throw new PlankwatchError('PW_E_INTERNAL', `unknown label state "${String(record.state)}"`);
  if (!/^[0-9a-f]{64}$/.test(record.sha256)) throw new PlankwatchError('PW_E_INTERNAL', 'sha256 must be 64 lowercase hex digits');
  const now = Math.trunc(options.now ?? Date.now());
  const at = Math.trunc(record.at ?? now);
  const by = record.by ?? null;
  const payload: LabelPayload = { sha256: record.sha256, state: record.state, label: record.label, by, at };
  append(outbox, record.instrument, 'label', `${record.sha256}@${at}`, payload, now);
  if (options.thumbnails && record.state !== 'predicted') {
    const relPath = outbox.framePath(record.sha256) ?? '';
    const thumb: ThumbnailPayload = { sha256: record.sha256, relPath, state: record.state };
    upsertUnsent(outbox, record.instrument, 'thumbnail', record.sha256, thumb, now);
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
  private readonly rows: OutboxRepository;
  private readonly instrument: string;

  constructor(rows: OutboxRepository, instrument: string) {
    this.rows = rows;
    this.instrument = instrument;
    rows.initProgress(instrument);
  }

  /**
   * Takes up to `maxRecords` rows to send, in priority then sequence order, skipping `exclude`
   * (in flight) and counts/rejects rows changed after `holdBefore` that have never been sent, stopping
   * once `maxRawBytes` is reached (at least one row). Marks them sent in the same step, so their
   * content is frozen from here on.
   */
  claim(options: { maxRecords: number; maxRawBytes: number; exclude: ReadonlySet<number>; holdBefore: number; now: number }): OutboxRow[] {
    return this.rows.transaction(() => {
      const rows = this.rows.pending(this.instrument, options.holdBefore, options.maxRecords + options.exclude.size);
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
        if (row.sentAt === null) this.rows.markSent(this.instrument, row.seq, options.now);
      }
      return out;
    });
  }

  /**
   * How long to wait before claiming, so that a trickle of live records goes out in fewer, fuller
   * batches: 0 when there is nothing to hold back (nothing pending, a batch's worth is ready, a row
   * goes out again, or the oldest row has waited `maxDelayMs`), else the milliseconds until the
   * oldest pending row is `maxDelayMs` old. Reads only; claims nothing.
   */
  holdFor(options: { maxDelayMs: number; maxRecords: number; maxRawBytes: number; exclude: ReadonlySet<number>; holdBefore: number; now: number }): number {
    if (options.maxDelayMs <= 0) return 0;
    const rows = this.rows.pending(this.instrument, options.holdBefore, options.maxRecords + options.exclude.size);
    let n = 0;
    let bytes = 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (const row of rows) {
      if (options.exclude.has(row.seq)) continue;
      if (row.sentAt !== null) return 0;
      n++;
      bytes += row.bytes;
      oldest = Math.min(oldest, row.createdAt);
    }
    if (n === 0 || n >= options.maxRecords || bytes >= options.maxRawBytes) return 0;
    return Math.max(0, oldest + options.maxDelayMs - options.now);
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
    const maxSeq = ack.seqs.reduce((m, seq) => Math.max(m, seq), 0);
    this.rows.transaction(() =>
      this.rows.recordAck(this.instrument, ack.seqs, {
        maxSeq,
        records: ack.seqs.length,
        predictions: ack.predictions,
        wireBytes: ack.wireBytes,
        rawBytes: ack.rawBytes,
        predictionWireBytes: ack.predictionWireBytes,
        rateBps: ack.rateBps,
        now: ack.now,
      }),
    );
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
    return this.rows.transaction((): ShoreStatusOutcome => {
      const refuse = (reason: ShoreStatusRefusal['reason'], detail: string, extra: Omit<ShoreStatusRefusal, 'reason' | 'detail'> = {}): ShoreStatusOutcome => ({
        deleted: 0,
        resent: 0,
        refused: { reason, detail, ...extra },
      });
      const p = this.rows.progress(this.instrument);
      const highestSent = Math.max(p?.last_acked_seq ?? 0, this.rows.highestSent(this.instrument));
      if (status.maxSeq > highestSent || status.contiguousThrough > highestSent) {
        return refuse('over-claim', `the status claims seqs up to ${status.maxSeq}, the highest ever sent is ${highestSent}`, { highestSent });
      }
      const last = p?.shore_at ?? null;
      if (last !== null && status.generatedAt <= last) {
        return refuse(status.generatedAt === last ? 'duplicate' : 'stale', `made at ${status.generatedAt}, not after the last status applied (${last})`, { olderByMs: last - status.generatedAt });
      }
      if (status.generatedAt > now + FUTURE_TOLERANCE_MS) return refuse('future', `made at ${status.generatedAt}, more than a day ahead of this clock (${now})`);
      const deleted = this.rows.deleteConfirmed(this.instrument, status.contiguousThrough);
      const cutoff = status.generatedAt - resendAfterMs;
      let resent = 0;
      for (const [from, to] of status.missing) resent += this.rows.resend(this.instrument, from, to, cutoff);
      // Above the shore's highest seq nothing is known to be there. With a truncated list, only
      // what lies before the last listed range is certain.
      if (!status.truncated) {
        for (const seq of this.rows.ackedAfter(this.instrument, status.maxSeq, cutoff)) {
          resent += this.rows.resend(this.instrument, seq, seq, cutoff);
        }
      }
      const missing = status.missing.reduce((n, [a, b]) => n + (b - a + 1), 0);
      this.rows.setShore(this.instrument, status.contiguousThrough, missing, status.generatedAt);
      return { deleted, resent };
    });
  }

  /** MQTT bytes sent on a UTC day (YYYY-MM-DD). */
  dailyBytes(day: string): number {
    return this.rows.dailyBytes(day);
  }

  addDailyBytes(day: string, bytes: number): void {
    this.rows.addDailyBytes(day, bytes);
  }

  setRate(rateBps: number): void {
    this.rows.setRate(this.instrument, rateBps);
  }

  status(now = Date.now()): OutboxStatus {
    const byKind: Partial<Record<RecordKind, OutboxKindStatus>> = {};
    let records = 0;
    let bytes = 0;
    for (const r of this.rows.queuedByKind(this.instrument)) {
      byKind[r.kind as RecordKind] = { records: r.n, bytes: r.bytes };
      records += r.n;
      bytes += r.bytes;
    }
    const p = this.rows.progress(this.instrument);
    const wire = p?.wire_bytes ?? 0;
    const raw = p?.raw_bytes ?? 0;
    return {
      instrument: this.instrument,
      queued: { records, bytes, byKind },
      awaitingShore: this.rows.awaitingShore(this.instrument),
      lastSeq: this.rows.lastSeq(this.instrument),
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

/** `YYYY-MM-DD` of an instant, in UTC. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
