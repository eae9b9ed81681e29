// Messages between the segmentation thread and the stage.
import type { SegmentedFrame, SegmentSettings } from './settings.js';

export type SegmentRequest =
  | { id: number; op: 'configure'; settings: SegmentSettings }
  /** `gray`: the frame's pixels, moved (not copied) to the thread. */
  | { id: number; op: 'segment'; gray: ArrayBuffer; width: number; height: number };

export type SegmentReply = { id: number; ok: true; result?: SegmentedFrame } | { id: number; ok: false; message: string };
