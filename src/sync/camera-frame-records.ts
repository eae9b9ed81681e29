// Queues the whole camera frames (ingest.mode frames) for the shore: each frame once every ROI cut
// from it is stored (camera_frames.done_at; before that its ROIs may still be cut again), with the
// place and measures of each ROI. Like the navigation series (nav-records.ts) it reads the table
// incrementally from a mark kept in sync_marks and queues what it read in the same transaction that
// moves the mark, so a crash neither loses nor doubles a record. The ROIs' predictions went out
// before: a frame is done only once all of them are stored.
import type { Logger } from '../log.js';
import type { OutboxRepository } from '../store/index.js';
import { PRIORITY, type CameraFramePayload, type CameraRoiItem, type CameraRoisPayload } from './records.js';

export interface CameraFrameRecordsOptions {
  outbox: OutboxRepository;
  instrument: string;
  /** How often to look for frames done (default 2000 ms). */
  pollMs?: number;
  /** Called after something was queued (wakes the sender). */
  onQueued?: () => void;
  logger: Logger;
  now?: () => number;
}

/** Frames read per poll; a backlog is read over several polls. */
const READ_FRAMES = 200;
/** ROIs per camera_rois record (about 150 bytes each as JSON). */
export const ROIS_PER_RECORD = 100;

/** One poll: queues each camera frame done since the mark, then its ROIs. Returns how many records were queued. */
export function queueCameraFrameRecords(o: Pick<CameraFrameRecordsOptions, 'outbox' | 'instrument'>, now: number): number {
  const db = o.outbox;
  return db.transaction(() => {
    let queued = 0;
    const frames = db.cameraFramesDoneAfter(db.mark('cameraFrames.doneAt', -1), db.mark('cameraFrames.id', 0), READ_FRAMES);
    for (const f of frames) {
      const rois = db.cameraRoisOf(f.id);
      const frame: CameraFramePayload = {
        id: f.id,
        sha256: f.sha256,
        relPath: f.relPath,
        capturedAt: f.capturedAt,
        bytes: f.bytes,
        width: f.width,
        height: f.height,
        format: f.format,
        pixelSizeUm: f.pixelSizeUm,
        volumeM3: f.volumeM3,
        rois: rois.length,
      };
      db.append(o.instrument, 'camera_frame', PRIORITY.camera_frame, f.sha256, JSON.stringify(frame), now);
      queued++;
      for (let i = 0; i < rois.length; i += ROIS_PER_RECORD) {
        const chunk = rois.slice(i, i + ROIS_PER_RECORD);
        const items: CameraRoiItem[] = chunk.map((r) => [r.index, r.sha256, r.x, r.y, r.width, r.height, r.areaPx, r.areaUm2, r.majorPx, r.minorPx, r.orientationDeg, r.meanGrey]);
        const payload: CameraRoisPayload = { frameId: f.id, frameSha256: f.sha256, items };
        db.append(o.instrument, 'camera_rois', PRIORITY.camera_rois, `${f.sha256}:${chunk[0]!.index}`, JSON.stringify(payload), now);
        queued++;
      }
    }
    if (frames.length > 0) {
      const last = frames[frames.length - 1]!;
      db.setMark('cameraFrames.doneAt', last.doneAt);
      db.setMark('cameraFrames.id', last.id);
    }
    return queued;
  });
}

/** Polls the camera frame tables while the sync stage runs. */
export class CameraFrameRecords {
  private readonly options: CameraFrameRecordsOptions;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(options: CameraFrameRecordsOptions) {
    this.options = options;
  }

  start(): void {
    this.running = true;
    this.poll();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private poll(): void {
    if (!this.running) return;
    const o = this.options;
    try {
      if (queueCameraFrameRecords(o, (o.now ?? Date.now)()) > 0) o.onQueued?.();
    } catch (err) {
      o.logger.warn({ err, code: 'PW_E_DB' }, 'could not queue camera frames for the shore; trying again');
    }
    this.timer = setTimeout(() => this.poll(), o.pollMs ?? 2000);
    this.timer.unref();
  }
}
