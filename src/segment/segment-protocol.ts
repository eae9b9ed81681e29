// Messages between the segmentation thread and the stage.
import type { SegmentedFrame, SegmentSettings } from './settings.js';

/** A camera frame read, checked and segmented in the thread: the frame's format as decoded. */
export type SegmentedFile = SegmentedFrame & { format: string };

export type SegmentRequest =
  | { id: number; op: 'configure'; settings: SegmentSettings }
  /** `gray`: the frame's pixels, moved (not copied) to the thread. */
  | { id: number; op: 'segment'; gray: ArrayBuffer; width: number; height: number }
  /** The camera frame at `path`, read only if its bytes have this SHA-256, then decoded and checked. */
  | { id: number; op: 'segmentFile'; path: string; sha256: string; maxPixels: number };

export type SegmentReply =
  | { id: number; ok: true; result?: SegmentedFrame | SegmentedFile }
  /** `code` and `detail`: a PlankwatchError (the frame's own fault or not), passed on as such. */
  | { id: number; ok: false; message: string; code?: string; detail?: string };
