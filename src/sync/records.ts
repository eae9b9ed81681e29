// What travels ashore: record kinds, their payloads, and the batch message that carries them.
// Ship (src/sync) and shore (src/shore) both read this file; it is the wire contract.

/** Record kinds, in the order they go out when the link is short (lower first). */
export const PRIORITY = {
  counts: 0,
  model: 1,
  rejects: 2,
  prediction: 3,
  label: 4,
  thumbnail: 5,
  // The navigation stage's series, after the predictions they describe (same priority as the
  // predictions: queued together, they share batches, and the repeated SHA-256s compress away).
  positions: 3,
  track: 3,
  volumes: 3,
  // Whole camera frames, and the place and measures of each ROI cut from them (queued with its
  // prediction: the SHA-256 they share compresses away).
  camera_frame: 3,
  camera_rois: 3,
} as const;

export type RecordKind = keyof typeof PRIORITY;

export const RECORD_KINDS = Object.keys(PRIORITY) as RecordKind[];

/** Absolute counts per label for one window (never deltas). Key: `<windowMs>:<windowStart>`. */
export interface CountsPayload {
  windowMs: number;
  windowStart: number;
  windowEnd: number;
  total: number;
  counts: Record<string, number>;
}

/** An ensemble version seen in predictions. Key: the ensemble version. */
export interface ModelPayload {
  ensembleVersion: string;
  members: { member: string; version: string }[];
}

/** Rejected files per error code for one window (absolute). Key: `<windowMs>:<windowStart>`. */
export interface RejectsPayload {
  windowMs: number;
  windowStart: number;
  windowEnd: number;
  total: number;
  byCode: Record<string, number>;
}

/** One classified ROI. Key: `<sha256>:<ensembleVersion>`. Probabilities rounded to 4 decimals. */
export interface PredictionPayload {
  sha256: string;
  relPath: string;
  bytes: number;
  width: number;
  height: number;
  area: number;
  /** The area in µm² (camera.pixelSizeUm known); absent otherwise, and from ships before it was sent. */
  areaUm2?: number;
  format: string;
  arrivedAt: number;
  classifiedAt: number;
  ensembleVersion: string;
  label: string;
  probability: number;
  margin: number;
  disagreement: number;
  /** Ensemble top-k as [label, probability] pairs. */
  topK: [string, number][];
  /** Each member's top-1: [member, version, label, probability]. */
  members: [string, string, string, number][];
}

export type LabelState = 'predicted' | 'validated' | 'dubious';
export const LABEL_STATES: readonly LabelState[] = ['predicted', 'validated', 'dubious'];

/** A label state change of one frame (as EcoTaxa: predicted, validated, dubious). Key: `<sha256>@<at>`. */
export interface LabelPayload {
  sha256: string;
  state: LabelState;
  label: string;
  /** Who recorded it (user name), or null. */
  by: string | null;
  /** ms since epoch. */
  at: number;
}

/** A small image of a validated or dubious ROI. Key: sha256. `data` is base64 JPEG; absent if the image was missing. */
export interface ThumbnailPayload {
  sha256: string;
  relPath: string;
  state: LabelState;
  format?: 'jpeg';
  width?: number;
  height?: number;
  data?: string;
  missing?: boolean;
}

/**
 * One ROI's tags: [sha256, capture time (ms), time source, lat, lon, depth (m), temperature (°C),
 * salinity, position quality, environment quality, tagged at (ms)]. Unknown values are null.
 */
export type PositionItem = [string, number, string, number | null, number | null, number | null, number | null, number | null, string, string, number];

/**
 * ROI positions and water as the navigation stage tagged them (re-tagged ROIs come again, with a
 * later tagged-at: the later wins ashore). Key: `<tagged at>:<frame id>` of the last item.
 */
export interface PositionsPayload {
  items: PositionItem[];
}

/**
 * The ship's track and CTD series, decimated to one point per sync.trackIntervalS. Fixes:
 * [t, lat, lon, speed over ground (kn) or null]; env: [t, depth (m), temperature (°C), salinity].
 * Key: the first row id of each series read (`f<id>:e<id>`).
 */
export interface TrackPayload {
  fixes: [number, number, number, number | null][];
  env: [number, number | null, number | null, number | null][];
}

/**
 * Sampled volume summed into cells of `cellMs` by `cellM` metres of depth: [cell start (ms), cell's
 * shallower bound (m) or null for an unknown depth, m³]. Key: `<first row id>-<last row id>` (cells
 * of one record are added ashore, never replaced).
 */
export interface VolumesPayload {
  cellMs: number;
  cellM: number;
  cells: [number, number | null, number][];
}

/**
 * A whole camera frame (ingest.mode frames), queued once every ROI cut from it is stored. `id` is
 * the ship's camera_frames id; the shore keys the frame by its SHA-256. pixelSizeUm and volumeM3
 * are null when unknown. Key: the camera frame's SHA-256.
 */
export interface CameraFramePayload {
  id: number;
  sha256: string;
  relPath: string;
  /** Capture time (ms since epoch: the file's mtime, else its arrival). */
  capturedAt: number;
  bytes: number;
  width: number;
  height: number;
  format: string;
  pixelSizeUm: number | null;
  volumeM3: number | null;
  /** ROIs kept (sent in camera_rois records). */
  rois: number;
}

/**
 * One ROI cut from a camera frame: [index (1, 2, …), the ROI image's SHA-256 (= its prediction's),
 * organism box x, y, width, height (pixels of the frame), area (pixels), area (µm², null when the
 * pixel size was unknown), major axis, minor axis (pixels), orientation (degrees in (-90, 90]), mean
 * grey (0–255)]. Axes, orientation and mean grey to 0.01, the precision of the EcoTaxa export.
 */
export type CameraRoiItem = [number, string, number, number, number, number, number, number | null, number, number, number, number];

/**
 * ROIs of one camera frame (up to 100), queued with their predictions, in the same transaction.
 * Key: `<camera frame SHA-256>:<first index>`; the shore keys each ROI by (camera frame SHA-256, index).
 */
export interface CameraRoisPayload {
  frameId: number;
  frameSha256: string;
  items: CameraRoiItem[];
}

export interface PayloadOf {
  counts: CountsPayload;
  model: ModelPayload;
  rejects: RejectsPayload;
  prediction: PredictionPayload;
  label: LabelPayload;
  thumbnail: ThumbnailPayload;
  positions: PositionsPayload;
  track: TrackPayload;
  volumes: VolumesPayload;
  camera_frame: CameraFramePayload;
  camera_rois: CameraRoisPayload;
}

/** One record in a batch. (instrument, seq) is unique; (instrument, kind, key) names the thing it describes. */
export interface SyncRecord<K extends RecordKind = RecordKind> {
  seq: number;
  kind: K;
  key: string;
  /** ms since epoch when the ship queued it. */
  at: number;
  data: PayloadOf[K];
}

/** The JSON inside a batch message. */
export interface SyncBatch {
  v: 1;
  instrument: string;
  /** ms since epoch when the ship built the batch. */
  sentAt: number;
  records: SyncRecord[];
}

/** Retained message the shore publishes back to each ship: what it holds. */
export interface ShoreStatus {
  v: 1;
  instrument: string;
  /** Every seq in 1..contiguousThrough is stored ashore. */
  contiguousThrough: number;
  /** Highest seq stored ashore. */
  maxSeq: number;
  /** Records stored ashore. */
  records: number;
  /** Missing [from, to] ranges (inclusive) between contiguousThrough and maxSeq, oldest first. */
  missing: [number, number][];
  /** True when `missing` was cut short (only its first ranges are listed). */
  truncated: boolean;
  /** Shore clock, ms since epoch. */
  generatedAt: number;
}

export function batchTopic(prefix: string, instrument: string): string {
  return `${prefix}/${instrument}/batch`;
}

export function shoreStatusTopic(prefix: string, instrument: string): string {
  return `${prefix}/${instrument}/shore-status`;
}

/** Round to 4 decimals: enough for a probability, and fewer bytes on a paid link. */
export function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
