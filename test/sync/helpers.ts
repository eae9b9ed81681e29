// A ship side without the classifier: a real Store (SQLite file) with the sync hooks, fed with
// synthetic classified frames, and a real sender. Comparison of a ship database with a shore one.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { silentLogger, type Logger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { enqueueClassified, enqueueReject } from '../../src/sync/outbox.js';
import { SyncSender, type SyncSenderOptions } from '../../src/sync/sender.js';
import type { ClassifiedFrame } from '../../src/types.js';

export const LABELS = ['copepod_calanoid', 'chaetognath_other', 'detritus_other', 'diatom_chain_string', 'appendicularian_s_shape'];
export const WINDOW_MS = 60_000;

export function tmp(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `pw-${prefix}-`));
}

export function sha(instrument: string, i: number): string {
  return createHash('sha256').update(`${instrument}/${i}`).digest('hex');
}

/** A classified frame as the pipeline would hand it to the store. */
export function frame(instrument: string, i: number, at: number): ClassifiedFrame {
  const label = LABELS[i % LABELS.length]!;
  const other = LABELS[(i + 1) % LABELS.length]!;
  const p = 0.5 + ((i * 37) % 50) / 100;
  return {
    frame: {
      file: { path: `/x/${i}.jpg`, relPath: `tow-1/${String(i).padStart(6, '0')}.jpg`, sha256: sha(instrument, i), bytes: 3000 + i, arrivedAt: at - 150 },
      width: 40 + (i % 30),
      height: 30 + (i % 20),
      area: 500 + i,
      format: 'jpeg',
      inputs: new Map(),
    },
    prediction: {
      label,
      probability: p,
      margin: p - (1 - p),
      disagreement: i % 3 === 0 ? 0.5 : 0,
      topK: [{ label, probability: p }, { label: other, probability: 1 - p }],
      members: [
        { member: 'pwnet-a', version: 'v1', topK: [{ label, probability: p }] },
        { member: 'pwnet-b', version: 'v2', topK: [{ label, probability: p - 0.01 }] },
      ],
      ensembleVersion: 'e1',
    },
    classifiedAt: at,
  };
}

export interface Ship {
  store: Store;
  dbPath: string;
  instrument: string;
  /** Stores frames [from, to) in batches of `batch`, as the pipeline does. */
  write(from: number, to: number, batch?: number, at?: number): void;
  close(): void;
}

export function openShip(dir: string, instrument: string, logger: Logger = silentLogger()): Ship {
  const dbPath = path.join(dir, 'ship.db');
  const ctx = { instrument, windowMs: WINDOW_MS };
  const store = new Store({
    path: dbPath,
    countsWindowMs: WINDOW_MS,
    logger,
    onRecordClassified: (outbox, stored) => enqueueClassified(outbox, ctx, stored),
    onRecordReject: (outbox, reject) => enqueueReject(outbox, ctx, reject),
  });
  store.open();
  return {
    store,
    dbPath,
    instrument,
    write(from, to, batch = 25, at = Date.now()) {
      for (let i = from; i < to; i += batch) {
        const items: ClassifiedFrame[] = [];
        for (let j = i; j < Math.min(to, i + batch); j++) items.push(frame(instrument, j, at + j * 40));
        store.recordClassified(items);
      }
    },
    close: () => store.close(),
  };
}

export function senderOptions(ship: Ship, url: string, overrides: Partial<SyncSenderOptions> = {}): SyncSenderOptions {
  return {
    outbox: ship.store.outboxRepository(),
    instrument: ship.instrument,
    link: { url, clientId: `ship-${ship.instrument}`, reconnectPeriodMs: 500, keepaliveS: 10, connectTimeoutMs: 5000 },
    topicPrefix: 'plankwatch-sync',
    bytesPerSecond: 0,
    dailyBytes: 0,
    maxBatchBytes: 4096,
    maxBatchRecords: 200,
    maxInFlight: 4,
    compression: 'brotli',
    countsHoldMs: 0,
    resendAfterMs: 3000,
    ackTimeoutMs: 15_000,
    thumbnails: null,
    idlePollMs: 200,
    logger: silentLogger(),
    ...overrides,
  };
}

export function startSender(ship: Ship, url: string, overrides: Partial<SyncSenderOptions> = {}): Promise<SyncSender> {
  const sender = new SyncSender(senderOptions(ship, url, overrides));
  return sender.start().then(() => sender);
}

interface Row {
  sha256: string;
  ensemble_version: string;
  label: string;
  probability: number;
}

/** Ship predictions (from frames/predictions) and counts, in the shore's terms. */
export function shipContent(dbPath: string): { predictions: Row[]; counts: string[]; lastSeq: number } {
  const db = new Database(dbPath, { readonly: true });
  try {
    const predictions = db
      .prepare(`SELECT f.sha256, p.ensemble_version, p.label, round(p.probability, 4) AS probability FROM predictions p JOIN frames f ON f.id = p.frame_id ORDER BY f.sha256`)
      .all() as Row[];
    const counts = (db.prepare(`SELECT window_start, label, count FROM counts ORDER BY window_start, label`).all() as { window_start: number; label: string; count: number }[]).map(
      (r) => `${r.window_start}/${r.label}=${r.count}`,
    );
    const lastSeq = (db.prepare(`SELECT coalesce(max(last_seq), 0) AS n FROM sync_sequence`).get() as { n: number }).n;
    return { predictions, counts, lastSeq };
  } finally {
    db.close();
  }
}

/** The same from a shore SQLite file, for one instrument. */
export function shoreContent(dbPath: string, instrument: string): { predictions: Row[]; counts: string[]; records: number; maxSeq: number } {
  const db = new Database(dbPath, { readonly: true });
  try {
    const predictions = db
      .prepare(`SELECT sha256, ensemble_version, label, probability FROM shore_predictions WHERE instrument = ? ORDER BY sha256`)
      .all(instrument) as Row[];
    const counts = (db.prepare(`SELECT window_start, label, count FROM shore_counts WHERE instrument = ? ORDER BY window_start, label`).all(instrument) as {
      window_start: number;
      label: string;
      count: number;
    }[]).map((r) => `${r.window_start}/${r.label}=${r.count}`);
    const s = db.prepare(`SELECT count(*) AS n, coalesce(max(seq), 0) AS m FROM shore_records WHERE instrument = ?`).get(instrument) as { n: number; m: number };
    return { predictions, counts, records: s.n, maxSeq: s.m };
  } finally {
    db.close();
  }
}

export async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
