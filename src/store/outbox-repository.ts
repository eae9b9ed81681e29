// The sync outbox's tables (migration 4) as the sync stage uses them: rows queued for the shore
// with their sequence numbers, the ensemble versions already announced, the sender's progress and
// its bytes per day; and the few reads of the results a queued record reports (a window's counts,
// a span's rejects, a frame's path). What to queue, when to send and what a shore status means is
// the sync stage's; this file only keeps it. Every call is synchronous.
import type { SqliteDatabase } from './db.js';
import { PlankwatchError } from '../errors.js';

/** An outbox row as the sender sees it. */
export interface OutboxRow {
  seq: number;
  kind: string;
  key: string;
  payload: string;
  bytes: number;
  createdAt: number;
  sentAt: number | null;
}

/** The sender's running figures for one instrument (table sync_progress). */
export interface OutboxProgressRow {
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

/** What one broker acknowledgement adds to an instrument's progress. */
export interface AckedBatch {
  /** Highest seq of the batch. */
  maxSeq: number;
  records: number;
  predictions: number;
  wireBytes: number;
  rawBytes: number;
  predictionWireBytes: number;
  rateBps: number;
  now: number;
}

/** The outbox tables, for one connection; created by the Store. */
export interface OutboxRepository {
  /** Runs `fn` in one immediate transaction (inside another transaction, as a part of it). */
  transaction<T>(fn: () => T): T;

  /** Appends a record with the instrument's next sequence number; returns that number. */
  append(instrument: string, kind: string, priority: number, key: string, json: string, now: number): number;
  /** Rewrites the newest never-sent row of (instrument, kind, key); false when there is none. */
  replaceUnsent(instrument: string, kind: string, key: string, json: string, now: number): boolean;
  /** True the first time an ensemble version is offered (it is remembered). */
  firstSeen(ensembleVersion: string, now: number): boolean;

  /** A counts window's rows as stored: label and count, by label. */
  windowCounts(windowMs: number, windowStart: number): { label: string; count: number }[];
  /** Rejects recorded in [from, to), per code, by code. */
  rejectCounts(from: number, to: number): { code: string; n: number }[];
  /** The path a frame was first stored under, or undefined. */
  framePath(sha256: string): string | undefined;

  /** Rows not acknowledged, in priority then seq order; never-sent counts/rejects rows changed after `holdBefore` left out. */
  pending(instrument: string, holdBefore: number, limit: number): OutboxRow[];
  /** Marks a row sent (its content frozen from then on), if it was not. */
  markSent(instrument: string, seq: number, now: number): void;
  /** Marks each row acknowledged by the broker and adds the batch to the progress. */
  recordAck(instrument: string, seqs: readonly number[], batch: AckedBatch): void;
  /** Clears the acknowledgement of rows in [from, to] acknowledged at or before `ackedBy`; returns how many. */
  resend(instrument: string, from: number, to: number, ackedBy: number): number;
  /** Deletes rows up to `through` that were sent and acknowledged; returns how many. */
  deleteConfirmed(instrument: string, through: number): number;
  /** The highest seq ever marked sent that is still in the outbox (0 if none). */
  highestSent(instrument: string): number;
  /** Seqs above `after` acknowledged at or before `ackedBy`, ascending. */
  ackedAfter(instrument: string, after: number, ackedBy: number): number[];
  /** Records a shore status applied: through which seq the shore holds all, how many it lacks, when made. */
  setShore(instrument: string, through: number, missing: number, at: number): void;
  /** Creates the instrument's progress row if missing. */
  initProgress(instrument: string): void;
  progress(instrument: string): OutboxProgressRow | undefined;
  setRate(instrument: string, rateBps: number): void;
  /** MQTT bytes sent on a UTC day (YYYY-MM-DD). */
  dailyBytes(day: string): number;
  addDailyBytes(day: string, bytes: number): void;
  /** Rows not acknowledged, per kind: how many and their JSON bytes. */
  queuedByKind(instrument: string): { kind: string; n: number; bytes: number }[];
  /** Rows acknowledged by the broker and still kept (not yet confirmed by the shore). */
  awaitingShore(instrument: string): number;
  /** The last sequence number handed out (0 if none). */
  lastSeq(instrument: string): number;

  /** A named mark of how far a series has been queued for the shore (sync_marks); `fallback` when unset. */
  mark(name: string, fallback: number): number;
  setMark(name: string, value: number): void;
  /** ROI positions (re)tagged after (taggedAt, frameId), in that order, with the frame's SHA-256. */
  positionsAfter(taggedAt: number, frameId: number, limit: number): SyncPositionRow[];
  /** Position fixes (lat/lon known) stored after row `id`, in row order. */
  fixesAfter(id: number, limit: number): { id: number; t: number; lat: number; lon: number; sogKn: number | null }[];
  /** CTD samples stored after row `id`, in row order. */
  envAfter(id: number, limit: number): { id: number; t: number; depthM: number | null; temperatureC: number | null; salinity: number | null }[];
  /** Volume samples stored after row `id`, in row order. */
  volumesAfter(id: number, limit: number): { id: number; t: number; volumeM3: number; depthM: number | null }[];
  /** Camera frames done (every ROI stored) after (doneAt, id), in that order. */
  cameraFramesDoneAfter(doneAt: number, id: number, limit: number): SyncCameraFrameRow[];
  /** The camera-frame ROIs whose image has these bytes (usually one), with their camera frame's id and SHA-256. */
  cameraRoisBySha(sha256: string): SyncCameraRoiRow[];
}

/** A camera_frames row as the sync stage sends it. */
export interface SyncCameraFrameRow {
  id: number;
  sha256: string;
  relPath: string;
  capturedAt: number;
  bytes: number;
  width: number;
  height: number;
  format: string;
  pixelSizeUm: number | null;
  volumeM3: number | null;
  particles: number;
  doneAt: number;
}

/** A camera_frame_rois row as the sync stage sends it. */
export interface SyncCameraRoiRow {
  frameId: number;
  frameSha256: string;
  index: number;
  sha256: string;
  x: number;
  y: number;
  width: number;
  height: number;
  areaPx: number;
  areaUm2: number | null;
  majorPx: number;
  minorPx: number;
  orientationDeg: number;
  meanGrey: number;
}

/** A roi_positions row as the sync stage sends it. */
export interface SyncPositionRow {
  frameId: number;
  sha256: string;
  t: number;
  timeSource: string;
  lat: number | null;
  lon: number | null;
  depthM: number | null;
  temperatureC: number | null;
  salinity: number | null;
  quality: string;
  envQuality: string;
  taggedAt: number;
}


/** The statements behind OutboxRepository, prepared once per connection. */
export function createOutboxRepository(db: SqliteDatabase): OutboxRepository {
  const s = {
    nextSeq: db.prepare<[string], { last_seq: number }>(`UPDATE sync_sequence SET last_seq = last_seq + 1 WHERE instrument = ? RETURNING last_seq`),
    initSeq: db.prepare<[string]>(`INSERT INTO sync_sequence (instrument, last_seq) VALUES (?, 0) ON CONFLICT DO NOTHING`),
    unsentByKey: db.prepare<[string, string, string], { seq: number }>(
      `SELECT seq FROM sync_outbox WHERE instrument = ? AND kind = ? AND key = ? AND sent_at IS NULL ORDER BY seq DESC LIMIT 1`,
    ),
    insert: db.prepare<[string, number, string, number, string, string, number, number, number]>(
      `INSERT INTO sync_outbox (instrument, seq, kind, priority, key, payload, bytes, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    update: db.prepare<[string, number, number, string, number]>(`UPDATE sync_outbox SET payload = ?, bytes = ?, updated_at = ? WHERE instrument = ? AND seq = ?`),
    countsOf: db.prepare<[number, number], { label: string; count: number }>(`SELECT label, count FROM counts WHERE window_ms = ? AND window_start = ? ORDER BY label`),
    rejectsBetween: db.prepare<[number, number], { code: string; n: number }>(`SELECT code, count(*) AS n FROM rejects WHERE at >= ? AND at < ? GROUP BY code ORDER BY code`),
    framePath: db.prepare<[string], { rel_path: string }>(`SELECT rel_path FROM frames WHERE sha256 = ?`),
    modelSeen: db.prepare<[string, number], { ensemble_version: string }>(`INSERT INTO sync_models (ensemble_version, at) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING ensemble_version`),
    pending: db.prepare<[string, number, number], OutboxRow>(
      `SELECT seq, kind, key, payload, bytes, created_at AS createdAt, sent_at AS sentAt FROM sync_outbox
       WHERE instrument = ? AND acked_at IS NULL
         AND (kind NOT IN ('counts', 'rejects') OR sent_at IS NOT NULL OR updated_at <= ?)
       ORDER BY priority, seq LIMIT ?`,
    ),
    markSent: db.prepare<[number, string, number]>(`UPDATE sync_outbox SET sent_at = ? WHERE instrument = ? AND seq = ? AND sent_at IS NULL`),
    markAcked: db.prepare<[number, string, number]>(`UPDATE sync_outbox SET acked_at = ? WHERE instrument = ? AND seq = ?`),
    resend: db.prepare<[string, number, number, number]>(`UPDATE sync_outbox SET acked_at = NULL WHERE instrument = ? AND seq BETWEEN ? AND ? AND acked_at <= ?`),
    deleteConfirmed: db.prepare<[string, number]>(`DELETE FROM sync_outbox WHERE instrument = ? AND seq <= ? AND sent_at IS NOT NULL AND acked_at IS NOT NULL`),
    maxSent: db.prepare<[string], { seq: number }>(`SELECT seq FROM sync_outbox WHERE instrument = ? AND sent_at IS NOT NULL ORDER BY seq DESC LIMIT 1`),
    ackedBefore: db.prepare<[string, number, number], { seq: number }>(`SELECT seq FROM sync_outbox WHERE instrument = ? AND seq > ? AND acked_at <= ? ORDER BY seq`),
    initProgress: db.prepare<[string]>(`INSERT INTO sync_progress (instrument) VALUES (?) ON CONFLICT DO NOTHING`),
    progress: db.prepare<[string], OutboxProgressRow>(`SELECT * FROM sync_progress WHERE instrument = ?`),
    addAcked: db.prepare<[number, number, number, number, number, number, number, number, string]>(
      `UPDATE sync_progress SET last_acked_seq = max(last_acked_seq, ?), acked_records = acked_records + ?,
         acked_predictions = acked_predictions + ?, acked_batches = acked_batches + 1, wire_bytes = wire_bytes + ?,
         raw_bytes = raw_bytes + ?, prediction_wire_bytes = prediction_wire_bytes + ?, rate_bps = ?, last_ack_at = ?
       WHERE instrument = ?`,
    ),
    setRate: db.prepare<[number, string]>(`UPDATE sync_progress SET rate_bps = ? WHERE instrument = ?`),
    setShore: db.prepare<[number, number, number, string]>(`UPDATE sync_progress SET shore_through = ?, shore_missing = ?, shore_at = ? WHERE instrument = ?`),
    daily: db.prepare<[string], { bytes: number }>(`SELECT bytes FROM sync_daily WHERE day = ?`),
    addDaily: db.prepare<[string, number]>(`INSERT INTO sync_daily (day, bytes) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET bytes = bytes + excluded.bytes`),
    queuedByKind: db.prepare<[string], { kind: string; n: number; bytes: number }>(
      `SELECT kind, count(*) AS n, coalesce(sum(bytes), 0) AS bytes FROM sync_outbox WHERE instrument = ? AND acked_at IS NULL GROUP BY kind`,
    ),
    awaiting: db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM sync_outbox WHERE instrument = ? AND acked_at IS NOT NULL`),
    lastSeq: db.prepare<[string], { last_seq: number }>(`SELECT last_seq FROM sync_sequence WHERE instrument = ?`),
    mark: db.prepare<[string], { value: number }>(`SELECT value FROM sync_marks WHERE name = ?`),
    setMark: db.prepare<[string, number]>(`INSERT INTO sync_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`),
    positionsAfter: db.prepare<[number, number, number], SyncPositionRow>(
      `SELECT rp.frame_id AS frameId, f.sha256, rp.t_ms AS t, rp.time_source AS timeSource, rp.lat, rp.lon, rp.depth_m AS depthM,
         rp.temperature_c AS temperatureC, rp.salinity, rp.quality, rp.env_quality AS envQuality, rp.tagged_at AS taggedAt
       FROM roi_positions rp JOIN frames f ON f.id = rp.frame_id
       WHERE (rp.tagged_at, rp.frame_id) > (?, ?) ORDER BY rp.tagged_at, rp.frame_id LIMIT ?`,
    ),
    fixesAfter: db.prepare<[number, number], { id: number; t: number; lat: number; lon: number; sogKn: number | null }>(
      `SELECT id, t_ms AS t, lat, lon, sog_kn AS sogKn FROM nav_fixes WHERE id > ? AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY id LIMIT ?`,
    ),
    envAfter: db.prepare<[number, number], { id: number; t: number; depthM: number | null; temperatureC: number | null; salinity: number | null }>(
      `SELECT id, t_ms AS t, depth_m AS depthM, temperature_c AS temperatureC, salinity FROM env_samples WHERE id > ? ORDER BY id LIMIT ?`,
    ),
    volumesAfter: db.prepare<[number, number], { id: number; t: number; volumeM3: number; depthM: number | null }>(
      `SELECT id, t_ms AS t, volume_m3 AS volumeM3, depth_m AS depthM FROM volume_samples WHERE id > ? ORDER BY id LIMIT ?`,
    ),
    cameraFramesDoneAfter: db.prepare<[number, number, number], SyncCameraFrameRow>(
      `SELECT id, sha256, rel_path AS relPath, captured_at AS capturedAt, bytes, width, height, format, pixel_size_um AS pixelSizeUm,
         volume_m3 AS volumeM3, particles, done_at AS doneAt
       FROM camera_frames WHERE done_at IS NOT NULL AND (done_at, id) > (?, ?) ORDER BY done_at, id LIMIT ?`,
    ),
    cameraRoisBySha: db.prepare<[string], SyncCameraRoiRow>(
      `SELECT r.camera_frame_id AS frameId, f.sha256 AS frameSha256, r.roi_index AS "index", r.sha256, r.x, r.y, r.width, r.height,
         r.area_px AS areaPx, r.area_um2 AS areaUm2, r.major_px AS majorPx, r.minor_px AS minorPx, r.orientation_deg AS orientationDeg, r.mean_grey AS meanGrey
       FROM camera_frame_rois r JOIN camera_frames f ON f.id = r.camera_frame_id WHERE r.sha256 = ? ORDER BY r.id`,
    ),
  };

  const allocateSeq = (instrument: string): number => {
    let row = s.nextSeq.get(instrument);
    if (!row) {
      s.initSeq.run(instrument);
      row = s.nextSeq.get(instrument);
    }
    if (!row) throw new PlankwatchError('PW_E_DB', 'sync_sequence: no row after insert');
    return row.last_seq;
  };

  return {
    transaction: (fn) => db.transaction(fn).immediate(),
    append: (instrument, kind, priority, key, json, now) => {
      const seq = allocateSeq(instrument);
      s.insert.run(instrument, seq, kind, priority, key, json, Buffer.byteLength(json), now, now);
      return seq;
    },
    replaceUnsent: (instrument, kind, key, json, now) => {
      const existing = s.unsentByKey.get(instrument, kind, key);
      if (!existing) return false;
      s.update.run(json, Buffer.byteLength(json), now, instrument, existing.seq);
      return true;
    },
    firstSeen: (ensembleVersion, now) => s.modelSeen.get(ensembleVersion, now) !== undefined,
    windowCounts: (windowMs, windowStart) => s.countsOf.all(windowMs, windowStart),
    rejectCounts: (from, to) => s.rejectsBetween.all(from, to),
    framePath: (sha256) => s.framePath.get(sha256)?.rel_path,
    pending: (instrument, holdBefore, limit) => s.pending.all(instrument, holdBefore, limit),
    markSent: (instrument, seq, now) => void s.markSent.run(now, instrument, seq),
    recordAck: (instrument, seqs, b) => {
      for (const seq of seqs) s.markAcked.run(b.now, instrument, seq);
      s.addAcked.run(b.maxSeq, b.records, b.predictions, b.wireBytes, b.rawBytes, b.predictionWireBytes, b.rateBps, b.now, instrument);
    },
    resend: (instrument, from, to, ackedBy) => s.resend.run(instrument, from, to, ackedBy).changes,
    deleteConfirmed: (instrument, through) => s.deleteConfirmed.run(instrument, through).changes,
    highestSent: (instrument) => s.maxSent.get(instrument)?.seq ?? 0,
    ackedAfter: (instrument, after, ackedBy) => s.ackedBefore.all(instrument, after, ackedBy).map((r) => r.seq),
    setShore: (instrument, through, missing, at) => void s.setShore.run(through, missing, at, instrument),
    initProgress: (instrument) => void s.initProgress.run(instrument),
    progress: (instrument) => s.progress.get(instrument),
    setRate: (instrument, rateBps) => void s.setRate.run(rateBps, instrument),
    dailyBytes: (day) => s.daily.get(day)?.bytes ?? 0,
    addDailyBytes: (day, bytes) => void s.addDaily.run(day, bytes),
    queuedByKind: (instrument) => s.queuedByKind.all(instrument),
    awaitingShore: (instrument) => s.awaiting.get(instrument)?.n ?? 0,
    lastSeq: (instrument) => s.lastSeq.get(instrument)?.last_seq ?? 0,
    mark: (name, fallback) => s.mark.get(name)?.value ?? fallback,
    setMark: (name, value) => void s.setMark.run(name, value),
    positionsAfter: (taggedAt, frameId, limit) => s.positionsAfter.all(taggedAt, frameId, limit),
    fixesAfter: (id, limit) => s.fixesAfter.all(id, limit),
    envAfter: (id, limit) => s.envAfter.all(id, limit),
    volumesAfter: (id, limit) => s.volumesAfter.all(id, limit),
    cameraFramesDoneAfter: (doneAt, id, limit) => s.cameraFramesDoneAfter.all(doneAt, id, limit),
    cameraRoisBySha: (sha256) => s.cameraRoisBySha.all(sha256),
  };
}
