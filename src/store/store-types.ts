// The shapes the store takes and gives: its options, what a record call returns, counts,
// totals and status.
import type { Logger } from '../log.js';
import type { ClassifiedFrame, RejectCode } from '../types.js';
import type { OutboxRepository } from './outbox-repository.js';
import type { WindowCounts } from './windows.js';

export interface StoreOptions {
  /** Database file; its folder is created if missing. */
  path: string;
  /** Width of a counts window (ms), aligned to the epoch. */
  countsWindowMs: number;
  /** Lock wait for writers (ms). Default 5000. */
  busyTimeoutMs?: number;
  /**
   * Open for reading only (commands such as `counts` and `status`): nothing is migrated or written,
   * so a read never waits on, nor holds up, the daemon. A database at an older schema is read as it
   * is (the daemon upgrades it at its next start); one newer than this program is PW_E_DB.
   */
  readonly?: boolean;
  logger: Logger;
  /** Clock for `stored_at` / reject times; tests may fix it. Default Date.now. */
  now?: () => number;
  /**
   * Called INSIDE the recordClassified transaction with the outbox and the frames newly stored (not
   * those already present), so the sync stage's rows commit or roll back with the results. Must be
   * synchronous; a throw rolls the whole batch back.
   */
  onRecordClassified?: (outbox: OutboxRepository, stored: readonly ClassifiedFrame[]) => void;
  /** Called inside the recordReject transaction with the outbox and the reject as stored. Same rules. */
  onRecordReject?: (outbox: OutboxRepository, reject: RejectRecord & { id: number; at: number }) => void;
}

/** What recordClassified did with each frame of a batch. */
export interface RecordResult {
  /** Newly inserted with prediction and count increment. */
  stored: ClassifiedFrame[];
  /** A frame with this sha256 was already stored: nothing inserted but the path as a source. */
  alreadyPresent: ClassifiedFrame[];
}

/** A file that will not be classified, as the store records it. */
export interface RejectRecord {
  relPath: string;
  code: RejectCode;
  detail: string;
  sha256?: string | null;
  bytes?: number | null;
  mtimeMs?: number | null;
  quarantinedPath?: string | null;
  /** ms since epoch; default now. */
  at?: number;
}

/** How a stored source path was settled; what the ingest `isKnown` hook answers. */
export type SourceOutcome = 'processed' | 'duplicate' | 'quarantined';

export interface CountsSince {
  /** Start of the first window included (the window holding the requested instant). */
  since: number;
  total: number;
  /** Per label over all windows included. */
  totals: Record<string, number>;
  /** Oldest first. */
  windows: WindowCounts[];
}

/**
 * How files were settled, all time, as the database keeps them (table `totals`): the figures
 * `plankwatch status`, `/metrics` and the MQTT stats topic all read.
 */
export interface StoreTotals {
  /** Frames classified and stored: one per distinct content. */
  classified: number;
  /** Arrivals of content already stored (another name, or the same name again): recorded, not classified again. */
  duplicates: number;
  /** Files rejected and quarantined, by error code. */
  quarantined: { total: number; byCode: Record<string, number> };
}

export interface StoreStatus {
  schemaVersion: number;
  frames: number;
  predictions: number;
  /** Files whose content was already stored (StoreTotals.duplicates). */
  duplicates: number;
  /** Files rejected and quarantined (StoreTotals.quarantined). */
  rejects: { total: number; byCode: Record<string, number> };
  /** Database file plus its WAL, bytes (0 for :memory:). */
  dbBytes: number;
}

/** A frames row, camel-cased. */
export interface FrameRecord {
  id: number;
  sha256: string;
  relPath: string;
  bytes: number;
  width: number | null;
  height: number | null;
  area: number | null;
  format: string | null;
  arrivedAt: number;
  classifiedAt: number | null;
  storedAt: number;
}
