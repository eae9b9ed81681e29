// The shore database: turns a batch into idempotent upserts run in one transaction, and computes
// the gap report per instrument. The SQL is shared (src/shore/sql.ts); a driver runs it on SQLite
// (better-sqlite3) or PostgreSQL (pg).
import type { ShoreStatus, SyncBatch, SyncRecord } from '../sync/records.js';
import { forDialect, type Dialect, type ShoreStatements } from './sql.js';

/** One statement with its parameters. */
export interface Op {
  sql: string;
  params: unknown[];
  /** True for the shore_records insert: its change count says whether the record was new. */
  isRecord?: boolean;
}

/** What a database driver provides. */
export interface ShoreDriver {
  readonly dialect: Dialect;
  /** Opens the connection and creates the tables if missing. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** Runs the statements in one transaction; returns each one's number of changed rows. */
  transaction(ops: readonly Op[]): Promise<number[]>;
  query<T>(sql: string, params: unknown[]): Promise<T[]>;
}

export interface ApplyResult {
  /** Records new to the shore. */
  added: number;
  /** Records the shore already held (a resend). */
  duplicates: number;
}

export interface GapReport {
  instrument: string;
  records: number;
  maxSeq: number;
  contiguousThrough: number;
  /** Missing [from, to] ranges, inclusive, oldest first. */
  missing: [number, number][];
  /** More ranges are missing than listed. */
  truncated: boolean;
  lastReceivedAt: number | null;
}

/** Builds the statements for one batch. Unknown record kinds are stored as records only. */
export function planBatch(s: ShoreStatements, batch: SyncBatch, receivedAt: number): Op[] {
  const inst = batch.instrument;
  const ops: Op[] = [];
  for (const r of batch.records) {
    ops.push({ sql: s.record, params: [inst, r.seq, r.kind, r.key, r.at, receivedAt], isRecord: true });
    ops.push(...recordOps(s, inst, r));
  }
  return ops;
}

function recordOps(s: ShoreStatements, inst: string, r: SyncRecord): Op[] {
  switch (r.kind) {
    case 'prediction': {
      const d = (r as SyncRecord<'prediction'>).data;
      return [{
        sql: s.prediction,
        params: [inst, d.sha256, d.ensembleVersion, d.relPath, d.bytes, d.width, d.height, d.area, d.areaUm2 ?? null, d.format, d.arrivedAt, d.classifiedAt,
          d.label, d.probability, d.margin, d.disagreement, JSON.stringify(d.topK), JSON.stringify(d.members), r.seq],
      }];
    }
    case 'counts': {
      const d = (r as SyncRecord<'counts'>).data;
      return Object.entries(d.counts).sort(([a], [b]) => a.localeCompare(b)).map(([label, n]) => ({
        sql: s.count,
        params: [inst, d.windowMs, d.windowStart, d.windowEnd, label, n],
      }));
    }
    case 'rejects': {
      const d = (r as SyncRecord<'rejects'>).data;
      return Object.entries(d.byCode).sort(([a], [b]) => a.localeCompare(b)).map(([code, n]) => ({
        sql: s.reject,
        params: [inst, d.windowMs, d.windowStart, d.windowEnd, code, n],
      }));
    }
    case 'model': {
      const d = (r as SyncRecord<'model'>).data;
      return [{ sql: s.model, params: [inst, d.ensembleVersion, JSON.stringify(d.members), r.seq] }];
    }
    case 'label': {
      const d = (r as SyncRecord<'label'>).data;
      return [
        { sql: s.labelEvent, params: [inst, r.seq, d.sha256, d.state, d.label, d.by, d.at] },
        { sql: s.label, params: [inst, d.sha256, d.state, d.label, d.by, d.at, r.seq] },
      ];
    }
    case 'thumbnail': {
      const d = (r as SyncRecord<'thumbnail'>).data;
      return [{ sql: s.thumbnail, params: [inst, d.sha256, d.format ?? null, d.width ?? null, d.height ?? null, d.data ?? null, r.seq] }];
    }
    case 'positions': {
      const d = (r as SyncRecord<'positions'>).data;
      return (Array.isArray(d.items) ? d.items : []).map((i) => ({
        sql: s.position,
        params: [inst, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10], r.seq],
      }));
    }
    case 'track': {
      const d = (r as SyncRecord<'track'>).data;
      return [
        ...(Array.isArray(d.fixes) ? d.fixes : []).map((f) => ({ sql: s.trackPoint, params: [inst, f[0], f[1], f[2], f[3]] })),
        ...(Array.isArray(d.env) ? d.env : []).map((e) => ({ sql: s.envPoint, params: [inst, e[0], e[1], e[2], e[3]] })),
      ];
    }
    case 'volumes': {
      const d = (r as SyncRecord<'volumes'>).data;
      return (Array.isArray(d.cells) ? d.cells : []).map((c) => ({
        sql: s.volumeCell,
        params: [inst, r.key, c[0], c[1] === null ? -1 : Math.round(c[1] * 1000), c[1], c[2]],
      }));
    }
    case 'camera_frame': {
      const d = (r as SyncRecord<'camera_frame'>).data;
      return [{
        sql: s.cameraFrame,
        params: [inst, d.sha256, d.id, d.relPath, d.capturedAt, d.bytes, d.width, d.height, d.format, d.pixelSizeUm ?? null, d.volumeM3 ?? null, d.rois, r.seq],
      }];
    }
    case 'camera_rois': {
      const d = (r as SyncRecord<'camera_rois'>).data;
      return (Array.isArray(d.items) ? d.items : []).map((i) => ({
        sql: s.cameraRoi,
        params: [inst, d.frameSha256, i[0], d.frameId, i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10], i[11], r.seq],
      }));
    }
    default:
      return [];
  }
}

/** Gap report from the summary row and the gap rows (at or after `from`, the cached contiguous mark). */
export function gapReport(
  instrument: string,
  summary: { records: number; max_seq: number; min_seq: number; last_received_at: number | null } | undefined,
  gaps: { gap_from: number; gap_to: number }[],
  from: number,
  maxRanges: number,
): GapReport {
  const records = Number(summary?.records ?? 0);
  const maxSeq = Number(summary?.max_seq ?? 0);
  const minSeq = Number(summary?.min_seq ?? 0);
  const missing: [number, number][] = [];
  if (records > 0 && minSeq > 1 && from <= 1) missing.push([1, minSeq - 1]);
  for (const g of gaps) missing.push([Number(g.gap_from), Number(g.gap_to)]);
  const truncated = missing.length > maxRanges;
  const listed = missing.slice(0, maxRanges);
  const contiguousThrough = listed.length > 0 ? listed[0]![0] - 1 : maxSeq;
  const last = summary?.last_received_at;
  return { instrument, records, maxSeq, contiguousThrough, missing: listed, truncated, lastReceivedAt: last === null || last === undefined ? null : Number(last) };
}

/** The shore database, whatever the driver. */
export class ShoreStore {
  private readonly driver: ShoreDriver;
  private readonly s: ShoreStatements;
  /** Per instrument: every seq up to here is known to be stored (only ever grows), to keep gap scans short. */
  private readonly through = new Map<string, number>();

  constructor(driver: ShoreDriver) {
    this.driver = driver;
    this.s = forDialect(driver.dialect);
  }

  get dialect(): Dialect {
    return this.driver.dialect;
  }

  open(): Promise<void> {
    return this.driver.open();
  }

  close(): Promise<void> {
    return this.driver.close();
  }

  /** Stores a batch in one transaction. Safe to call twice with the same batch. */
  async apply(batch: SyncBatch, receivedAt = Date.now()): Promise<ApplyResult> {
    const ops = planBatch(this.s, batch, receivedAt);
    const changes = await this.driver.transaction(ops);
    let added = 0;
    ops.forEach((op, i) => {
      if (op.isRecord && (changes[i] ?? 0) > 0) added++;
    });
    return { added, duplicates: batch.records.length - added };
  }

  async instruments(): Promise<string[]> {
    const rows = await this.driver.query<{ instrument: string }>(this.s.instruments, []);
    return rows.map((r) => r.instrument);
  }

  /** Missing sequence numbers of one instrument (first `maxRanges` ranges). */
  async gaps(instrument: string, maxRanges = 100): Promise<GapReport> {
    const from = this.through.get(instrument) ?? 0;
    const [summary] = await this.driver.query<{ records: number; max_seq: number; min_seq: number; last_received_at: number | null }>(this.s.summary, [instrument]);
    const rows = await this.driver.query<{ gap_from: number; gap_to: number }>(this.s.gaps, [instrument, from, maxRanges + 1]);
    const report = gapReport(instrument, summary, rows, from, maxRanges);
    if (report.contiguousThrough > from) this.through.set(instrument, report.contiguousThrough);
    return report;
  }

  /** The retained message sent back to the ship. */
  async shoreStatus(instrument: string, maxRanges = 100): Promise<ShoreStatus> {
    const g = await this.gaps(instrument, maxRanges);
    return { v: 1, instrument, contiguousThrough: g.contiguousThrough, maxSeq: g.maxSeq, records: g.records, missing: g.missing, truncated: g.truncated, generatedAt: Date.now() };
  }

  /** Read access for exports and tests. */
  query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.driver.query<T>(sql, params);
  }
}
