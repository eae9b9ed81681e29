// Shapes the publisher pulls from the daemon (providers) and the JSON it puts on the wire.

/** Class counts of one time window, as the store keeps them. Absolute counts, never deltas. */
export interface CountsWindow {
  /** Window start, ms since epoch (inclusive). */
  startMs: number;
  /** Window end, ms since epoch (exclusive). */
  endMs: number;
  /** Number of ROIs classified in the window (the sum of `counts`). */
  total: number;
  /** Count per label. */
  counts: Record<string, number>;
  /** Ensemble version that produced most of these labels (the active one for an open window). */
  ensembleVersion: string;
}

/** One ensemble member as published on the `model` topic. */
export interface ModelMemberInfo {
  name: string;
  version: string;
  /** Square input side in pixels. */
  inputSize: number;
  /** The views of each image this member averages (test-time augmentation); ["identity"]: none. */
  tta: string[];
  /** Validation metrics from the member's meta.json (accuracy, logLoss, ...). */
  metrics: Record<string, number>;
}

/** The active ensemble, published retained on the `model` topic. */
export interface ModelInfo {
  ensembleVersion: string;
  /** Voting rule named in the ensemble file (e.g. `mean`, `geometric`). */
  voting: string;
  members: ModelMemberInfo[];
  /** Inference backend in use (e.g. `wasm`, `tensorflow`). */
  backend: string;
  /** ms since epoch when this ensemble became active. */
  sinceMs: number;
}

/** Running totals since the daemon started; the publisher adds rate and uptime. */
export interface PipelineStats {
  framesSeen: number;
  classified: number;
  duplicates: number;
  quarantined: number;
  queueDepth: number;
  backend: string;
}

/** One classified ROI, for the optional `detections` topic. */
export interface Detection {
  sha256: string;
  /** Path relative to the watch folder. */
  file: string;
  label: string;
  probability: number;
  /** ms since epoch when it was classified. */
  atMs: number;
}

/**
 * Callbacks the daemon passes in; the publisher calls them whenever it needs the current state
 * (on a change notice, on a timer, after every reconnect). They may read the database; they must
 * not throw for ordinary conditions (a throw is logged and the publication skipped).
 */
export interface PublisherProviders {
  /** The open window's counts, or null when there is none yet. */
  getCurrentCounts(): CountsWindow | null;
  /**
   * Closed windows whose final message has not yet been acknowledged by the broker, oldest first,
   * at most `limit` of them. Called until it returns fewer than `limit`.
   */
  getUnpublishedWindows(limit: number): CountsWindow[];
  /** Records that the final message of the window starting at `startMs` was acknowledged. */
  markWindowPublished(startMs: number): void;
  /**
   * Next publication sequence number: strictly greater than every number returned before,
   * across restarts (the caller persists it). Gaps are allowed.
   */
  nextSeq(): number;
  /** The active ensemble, or null before one is loaded. */
  getModelInfo(): ModelInfo | null;
  getStats(): PipelineStats;
}

// ---- payloads, exactly as serialised ----

export interface WindowJson {
  start: string;
  end: string;
  startMs: number;
  endMs: number;
}

export interface CountsPayload {
  instrument: string;
  window: WindowJson;
  seq: number;
  total: number;
  counts: Record<string, number>;
  final: boolean;
  ensembleVersion: string;
}

export interface ModelPayload {
  ensembleVersion: string;
  voting: string;
  members: ModelMemberInfo[];
  backend: string;
  since: string;
}

export interface StatsPayload {
  framesSeen: number;
  classified: number;
  duplicates: number;
  quarantined: number;
  queueDepth: number;
  roisPerSecond: number;
  backend: string;
  uptimeS: number;
}

export interface DetectionPayload {
  sha256: string;
  file: string;
  label: string;
  probability: number;
  at: string;
}
