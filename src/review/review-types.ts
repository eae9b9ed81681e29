// The review vocabulary: label states and actions, what a review query returns, and the limits a
// request must keep. Shared by the store, the HTTP routes and fine-tuning.
import type { ClassProb } from '../types.js';

/** Label states, as EcoTaxa names them. */
export type LabelStatus = 'predicted' | 'validated' | 'dubious';
/** What a person did: confirm the current label, correct it to another class, or mark it dubious. */
export type LabelAction = 'confirm' | 'correct' | 'dubious';

/** One label change asked for (API body of POST /api/labels, one item of a bulk request). */
export interface LabelRequest {
  sha256: string;
  action: LabelAction;
  /**
   * confirm: optional; when given it must equal the current label (else PW_E_REVIEW_CONFLICT).
   * correct: required, the right class. dubious: optional, the suspected class (default: current).
   */
  label?: string;
  /** Who did it (free text, 1 to 64 characters). */
  user: string;
  /** correct: the label is a class the ensemble does not know yet, on purpose. */
  newClass?: boolean;
}

/** One row of label_events: what the history shows and what onLabelChanged listeners receive. */
export interface LabelRecord {
  eventId: number;
  sha256: string;
  /** Path (relative to the watch folder) the frame was first seen under. */
  relPath: string;
  action: LabelAction;
  status: Exclude<LabelStatus, 'predicted'>;
  label: string;
  previousStatus: LabelStatus;
  previousLabel: string;
  /** True when the label was not a known class when it was given. */
  newClass: boolean;
  user: string;
  /** ms since epoch. */
  at: number;
}

/** A validated label, for fine-tuning. */
export interface ValidatedLabel {
  /** label_events id of the change that made it: pass the largest one back as `sinceId`. */
  eventId: number;
  sha256: string;
  relPath: string;
  label: string;
  user: string;
  at: number;
}

export interface CurrentLabel {
  status: LabelStatus;
  label: string;
  user: string | null;
  at: number | null;
}

/** One ROI as the review page and API show it. */
export interface ReviewItem {
  sha256: string;
  relPath: string;
  width: number | null;
  height: number | null;
  area: number | null;
  /** The organism's area in µm², where camera.pixelSizeUm was known when it was stored; else null. */
  areaUm2: number | null;
  format: string | null;
  arrivedAt: number;
  classifiedAt: number;
  prediction: {
    label: string;
    probability: number;
    margin: number;
    disagreement: number;
    topK: ClassProb[];
    ensembleVersion: string;
  };
  state: CurrentLabel;
}

/** A frame with its members' opinions and every source path (GET /api/frames/:sha256). */
export interface FrameDetail extends ReviewItem {
  members: { member: string; version: string; label: string; probability: number; topK: ClassProb[] }[];
  sources: { relPath: string; role: 'original' | 'duplicate' }[];
}

export interface QueueFilter {
  /** Predicted label (the ensemble's), exact. */
  label?: string;
  /** Classified at or after (ms). */
  since?: number;
  /** Classified before (ms). */
  until?: number;
  /** Which states to list (default ['predicted']). */
  status?: readonly LabelStatus[];
  limit?: number;
  offset?: number;
}

export interface QueuePage {
  items: ReviewItem[];
  /** Matching ROIs (counted up to `QUEUE_COUNT_CAP`; `totalCapped` says when the cap was hit). */
  total: number;
  totalCapped: boolean;
  limit: number;
  offset: number;
}

export interface LabelOutcome {
  sha256: string;
  ok: boolean;
  record?: LabelRecord;
  error?: { code: ReviewErrorCode; message: string };
}

export interface ClassInfo {
  name: string;
  /** True when the active ensemble knows the class; false for classes introduced by a correction. */
  known: boolean;
  /** Current validated labels of this class. */
  validated: number;
}

export interface ValidatedCounts {
  total: number;
  byLabel: Record<string, number>;
  /** Largest label_events id seen (0 if none): a point to count from next time. */
  lastEventId: number;
}

/** Called inside the label-write transaction; throwing rolls the write back. */
export type LabelListener = (record: LabelRecord) => void;

export type ReviewErrorCode = 'PW_E_REVIEW_REQUEST' | 'PW_E_REVIEW_NOT_FOUND' | 'PW_E_REVIEW_CONFLICT' | 'PW_E_REVIEW_NEW_CLASS';

export const QUEUE_MAX_LIMIT = 500;
export const QUEUE_COUNT_CAP = 10_000;
export const BULK_MAX = 500;
/** Class names: a letter or digit, then letters, digits, "_", "-", "." (1 to 100 characters). */
export const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
