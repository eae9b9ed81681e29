// Camera frames (ingest.mode frames) for the shore. Each ROI's place and measures in its camera
// frame are queued with its prediction, inside the store's transaction that records it
// (enqueueCameraRois, called by enqueueClassified), so the ROI and its measures commit together and
// the SHA-256 they share is sent once as far as the compressor is concerned. Each whole frame is
// queued once every ROI cut from it is stored (camera_frames.done_at): like the navigation series
// (nav-records.ts) it is read incrementally from a mark kept in sync_marks and queued in the same
// transaction that moves the mark, so a crash neither loses nor doubles a record.
import type { Logger } from '../log.js';
import type { OutboxRepository } from '../store/index.js';
import { TablePoller } from './table-poller.js';
import { PRIORITY, type CameraFramePayload, type CameraRoiItem, type CameraRoisPayload } from './records.js';

/** To 0.01: the precision of the EcoTaxa export, which rounds the same way (no second rounding ashore). */
function r2(x: number): number {
  return Math.round(x * 100) / 100 + 0; // + 0: -0 is 0
}

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
/** ROIs per camera_rois record (about 125 bytes each as JSON). */
export const ROIS_PER_RECORD = 100;

/**
 * Inside the store's recordClassified transaction: queues the place and measures of each stored ROI
 * that was cut from a camera frame, one camera_rois record per frame (and per 100 ROIs). Returns how
 * many records were queued (0 for ROIs the camera cut itself).
 */
export function enqueueCameraRois(outbox: OutboxRepository, instrument: string, sha256s: Iterable<string>, now: number): number {
  const byFrame = new Map<string, { frameId: number; items: CameraRoiItem[] }>();
  for (const sha of new Set(sha256s)) {
    for (const r of outbox.cameraRoisBySha(sha)) {
      const group = byFrame.get(r.frameSha256) ?? { frameId: r.frameId, items: [] };
      group.items.push([r.index, r.sha256, r.x, r.y, r.width, r.height, r.areaPx, r.areaUm2, r2(r.majorPx), r2(r.minorPx), r2(r.orientationDeg), r2(r.meanGrey)]);
      byFrame.set(r.frameSha256, group);
    }
  }
  let queued = 0;
  for (const [frameSha256, { frameId, items }] of byFrame) {
    items.sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < items.length; i += ROIS_PER_RECORD) {
      const chunk = items.slice(i, i + ROIS_PER_RECORD);
      const payload: CameraRoisPayload = { frameId, frameSha256, items: chunk };
      outbox.append(instrument, 'camera_rois', PRIORITY.camera_rois, `${frameSha256}:${chunk[0]![0]}`, JSON.stringify(payload), now);
      queued++;
    }
  }
  return queued;
}

/** One poll: queues each camera frame done since the mark. Returns how many records were queued. */
export function queueCameraFrameRecords(o: Pick<CameraFrameRecordsOptions, 'outbox' | 'instrument'>, now: number): number {
  const db = o.outbox;
  return db.transaction(() => {
    let queued = 0;
    const frames = db.cameraFramesDoneAfter(db.mark('cameraFrames.doneAt', -1), db.mark('cameraFrames.id', 0), READ_FRAMES);
    for (const f of frames) {
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
        rois: f.particles,
      };
      db.append(o.instrument, 'camera_frame', PRIORITY.camera_frame, f.sha256, JSON.stringify(frame), now);
      queued++;
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
export class CameraFrameRecords extends TablePoller {
  constructor(options: CameraFrameRecordsOptions) {
    super(options, (now) => queueCameraFrameRecords(options, now), 'camera frames');
  }
}
