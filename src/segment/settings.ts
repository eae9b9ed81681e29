// What the segmenter is told, and what it gives back for each camera frame. Plain data: these
// cross the worker thread boundary.
import type { CameraFrameRoiInsert } from '../store/index.js';

/** How the background of a camera frame is estimated (see docs/segmentation.md). */
export type BackgroundMethod = 'running' | 'columns' | 'local';

export type Polarity = 'bright-field' | 'dark-field';

export interface SegmentSettings {
  /** "auto": decided per camera frame from its median grey (above 127: bright-field). */
  polarity: Polarity | 'auto';
  /**
   * running: mean of the last `backgroundFrames` camera frames, organisms left out (started from
   * "local" on the first frame); columns: per-column mean over the last frames (line-scan);
   * local: each frame's own background, from a heavily smoothed copy with organisms removed.
   */
  background: BackgroundMethod;
  /** Camera frames the running and column backgrounds average over. */
  backgroundFrames: number;
  /** Largest organism, in pixels across, that the "local" background (and the first running one) removes. */
  localObjectPx: number;
  /** Contrast to the background, in grey levels of the flat-fielded frame (0-255), that marks a pixel as organism. */
  threshold: number;
  /** Radius in pixels of the closing that fills small gaps and holes in the mask (0: none). */
  closePx: number;
  /** Parts of the mask within about this many pixels of each other (more along diagonals) are one organism (0: each part its own). */
  mergePx: number;
  minAreaPx: number;
  /** 0: no upper limit. */
  maxAreaPx: number;
  /** Drop organisms that touch the frame's edge (cut by it). */
  dropBorder: boolean;
  /** Pixels of background kept around each organism in its ROI image. */
  marginPx: number;
  /** Most ROIs kept from one camera frame (the largest); the rest are counted as dropped. */
  maxRois: number;
}

/** One organism found in a camera frame. Lengths and areas in pixels. */
/** What segmentation measures of one ROI (the stored row without the ROI file's name and µm sizes). */
export type RoiGeometry = Omit<CameraFrameRoiInsert, 'sha256' | 'relPath' | 'areaUm2' | 'majorUm' | 'minorUm'>;

export interface SegmentedFrame {
  width: number;
  height: number;
  polarity: Polarity;
  /** Median grey of the estimated background. */
  backgroundGrey: number;
  /** Components seen, before the filters. */
  components: number;
  rejected: { small: number; large: number; border: number; overflow: number };
  rois: RoiGeometry[];
  /** One gray 8-bit image per ROI (cropWidth × cropHeight, row-major), from the flat-fielded frame. */
  crops: Uint8Array[];
  /** Time spent in the segmenter (ms). */
  ms: number;
}

export const DEFAULT_SEGMENT_SETTINGS: SegmentSettings = {
  polarity: 'bright-field',
  background: 'running',
  backgroundFrames: 10,
  localObjectPx: 160,
  threshold: 15,
  closePx: 0,
  mergePx: 10,
  minAreaPx: 40,
  maxAreaPx: 0,
  dropBorder: true,
  marginPx: 8,
  maxRois: 500,
};
