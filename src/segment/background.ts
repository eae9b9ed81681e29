// Background estimates for flat-fielding, with OpenCV: a running mean over the last camera frames,
// a per-column mean (line-scan imagers), or each frame's own smoothed background. Organism pixels
// are left out of the running estimates: they are replaced by the current background first. The
// estimate is handed out in 8 bits (half a grey level is far below any threshold): flat-fielding
// then runs on 8-bit images, with no full-frame float conversion per frame.
import type { Mat } from '@techstark/opencv-js';
import type { Cv } from './opencv.js';
import type { BackgroundMethod } from './settings.js';

export interface BackgroundOptions {
  method: BackgroundMethod;
  frames: number;
  localObjectPx: number;
}

/** Scale of the small copy the local background is computed on. */
const LOCAL_SCALE = 8;

/** cv.REDUCE_AVG (there at run time, missing from the package's types). */
const REDUCE_AVG = 1;

/**
 * One background estimate per stream of camera frames (one watch folder). Holds OpenCV memory:
 * call `dispose`. A frame of another size starts the estimate again.
 */
export class BackgroundModel {
  private readonly cv: Cv;
  private readonly options: BackgroundOptions;
  /** Running mean: full frame (CV_32F), or one row (columns). */
  private mean: Mat | undefined;
  /** `mean` rounded to 8 bits (CV_8U), made once per update. */
  private mean8: Mat | undefined;
  private seen = 0;
  private size = '';

  constructor(cv: Cv, options: BackgroundOptions) {
    this.cv = cv;
    this.options = options;
  }

  /** The background of `src` (CV_8UC1) as a new CV_8U Mat of its size; the caller deletes it. */
  estimate(src: Mat): Mat {
    const cv = this.cv;
    const size = `${src.cols}x${src.rows}`;
    if (size !== this.size) this.reset(size);
    switch (this.options.method) {
      case 'local':
        return this.local(src);
      case 'columns': {
        if (!this.mean) this.setMean(this.columnMean(src));
        const out = new cv.Mat();
        cv.resize(this.mean8!, out, new cv.Size(src.cols, src.rows), 0, 0, cv.INTER_NEAREST);
        return out;
      }
      case 'running':
        if (!this.mean) {
          const start = this.local(src);
          const mean = new cv.Mat();
          start.convertTo(mean, cv.CV_32F);
          start.delete();
          this.setMean(mean);
        }
        return this.mean8!.clone();
    }
  }

  /**
   * Fold `src` into the running estimate, its organism pixels (`mask` non-zero) taken from
   * `background` (the estimate used for this frame, CV_8U) instead. No-op for "local".
   */
  update(src: Mat, mask: Mat, background: Mat): void {
    if (this.options.method === 'local' || !this.mean) return;
    const cv = this.cv;
    // A copy: Mat.clone() of this OpenCV build shares the pixels (as the estimate handed out does).
    const clean = new cv.Mat();
    try {
      src.copyTo(clean);
      background.copyTo(clean, mask);
      // The plain mean of the frames so far, then an exponential mean over the last `frames`: the
      // first frame replaces the start estimate.
      this.seen += 1;
      const alpha = 1 / Math.min(this.seen, Math.max(1, this.options.frames));
      if (this.options.method === 'columns') {
        const row = new cv.Mat();
        cv.reduce(clean, row, 0, REDUCE_AVG, cv.CV_32F);
        cv.addWeighted(this.mean, 1 - alpha, row, alpha, 0, this.mean);
        row.delete();
      } else {
        cv.addWeighted(this.mean, 1 - alpha, clean, alpha, 0, this.mean, cv.CV_32F);
      }
      this.mean.convertTo(this.mean8!, cv.CV_8U);
    } finally {
      clean.delete();
    }
  }

  /** True until a frame has been folded in (its estimate is a first guess). */
  get fresh(): boolean {
    return this.seen === 0;
  }

  dispose(): void {
    this.mean?.delete();
    this.mean8?.delete();
    this.mean = undefined;
    this.mean8 = undefined;
  }

  private setMean(mean: Mat): void {
    this.mean = mean;
    this.mean8 = new this.cv.Mat();
    mean.convertTo(this.mean8, this.cv.CV_8U);
  }

  private reset(size: string): void {
    this.dispose();
    this.size = size;
    this.seen = 0;
  }

  /** Mean of each column, as one CV_32F row. */
  private columnMean(src: Mat): Mat {
    const cv = this.cv;
    const row = new cv.Mat();
    cv.reduce(src, row, 0, REDUCE_AVG, cv.CV_32F);
    return row;
  }

  /**
   * The frame's own background: on a copy 1/8 the size, a median over a window twice
   * localObjectPx across removes the organisms; the result is smoothed and scaled back up (CV_8U).
   */
  private local(src: Mat): Mat {
    const cv = this.cv;
    const small = new cv.Mat();
    const out = new cv.Mat();
    try {
      const w = Math.max(1, Math.round(src.cols / LOCAL_SCALE));
      const h = Math.max(1, Math.round(src.rows / LOCAL_SCALE));
      cv.resize(src, small, new cv.Size(w, h), 0, 0, cv.INTER_AREA);
      const k = 2 * Math.ceil(this.options.localObjectPx / LOCAL_SCALE / 2) + 1;
      // A median: exact on a ramp up to the frame's edge (a closing would flatten the last k/2
      // pixels), and blind to organisms covering less than half of its window.
      cv.medianBlur(small, small, Math.min(k, 255));
      cv.GaussianBlur(small, small, new cv.Size(3, 3), 0, 0, cv.BORDER_REPLICATE);
      cv.resize(small, out, new cv.Size(src.cols, src.rows), 0, 0, cv.INTER_LINEAR);
      return out;
    } catch (err) {
      out.delete();
      throw err;
    } finally {
      small.delete();
    }
  }
}
