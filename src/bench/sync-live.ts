// Sync benchmark, live: ROIs arrive at a steady 2 per second (as on a quiet tow) and go ashore
// through a 64 kbit/s, 600 ms round-trip link to a real Mosquitto and a shore ingester, once with
// every record sent at once (sync.maxDelayS 0) and once within a latency budget, and optionally
// with the navigation stage's series (each ROI's tags, a 1 Hz track and CTD decimated to 10 s, the
// sampled volume), and optionally with whole camera frames (20 ROIs each, with each ROI's box and
// measures at full precision, as segmentation stores them). Reports MQTT bytes per ROI: the prediction records' share (as `sync status`)
// and everything sent divided by the ROIs. Needs `mosquitto` installed.
import { createHash } from 'node:crypto';
import type { CameraFrameRoiInsert } from '../store/index.js';
import type { ClassifiedFrame } from '../types.js';
import { SyncSender } from '../sync/sender.js';
import { benchSenderOptions, roi } from './sync.js';
import { openSyncRig } from './sync-rig.js';

export interface BenchSyncLiveOptions {
  /** ROIs per second (default 2). */
  roisPerSecond?: number;
  /** How long ROIs keep coming (default 60 s). */
  seconds?: number;
  /** The latency budget (sync.maxDelayS) in ms; 0: every record at once. */
  maxDelayMs: number;
  /** Also tag every ROI and record a 1 Hz track, CTD and volume (default false). */
  nav?: boolean;
  /** Also cut the ROIs from whole camera frames of 20 and send the frames and the ROIs' measures (default false). */
  cameraFrames?: boolean;
  /** ROIs queued before the link opens (a backlog) instead of arriving live (default 0). */
  backlog?: number;
  log?: (line: string) => void;
}

export async function benchSyncLive(options: BenchSyncLiveOptions): Promise<Record<string, number | string>> {
  const perSecond = options.roisPerSecond ?? 2;
  const seconds = options.seconds ?? 60;
  const log = options.log ?? (() => undefined);
  const rig = await openSyncRig('sync-live', { latencyMs: 300, bytesPerSecond: 8000 });
  if ('skipped' in rig) return rig;
  const { store, ctx, proxy, logger } = rig;
  try {
    const db = store.database;
    const tag = db.prepare(`INSERT INTO roi_positions (frame_id, t_ms, time_source, lat, lon, depth_m, temperature_c, salinity, quality, gap_s, env_quality, env_gap_s, tagged_at)
      SELECT id, ?, 'filename', ?, ?, ?, ?, ?, 'interpolated', 0.5, 'interpolated', 0.5, ? FROM frames WHERE sha256 = ?`);
    const fix = db.prepare(`INSERT INTO nav_fixes (t_ms, source, lat, lon, sog_kn, received_at) VALUES (?, 'gps', ?, ?, 4.2, ?)`);
    const env = db.prepare(`INSERT INTO env_samples (t_ms, source, depth_m, temperature_c, salinity, received_at) VALUES (?, 'ctd', ?, ?, ?, ?)`);
    const vol = db.prepare(`INSERT INTO volume_samples (t_ms, volume_m3, source, depth_m) VALUES (?, ?, 'swept', ?)`);
    let lastSecond = -1;
    const base = Date.now();
    const addRois = (items: ClassifiedFrame[], at: number): void => {
      store.recordClassified(items);
      if (options.nav) for (const item of items) tagRoi(item, at);
    };
    const tagRoi = (item: ClassifiedFrame, at: number): void => {
      const s = (at - base) / 1000;
      const lat = 25.5 + s * 1e-5;
      const lon = -80.1 + s * 1e-5;
      const depth = 20 + 15 * Math.sin(s / 60);
      tag.run(at - 200, lat, lon, depth, 24 + depth / 100, 36.1, at, item.frame.file.sha256);
      vol.run(at, 0.002, depth);
      if (Math.floor(s) !== lastSecond) {
        lastSecond = Math.floor(s);
        fix.run(at, lat, lon, at);
        env.run(at, depth, 24 + depth / 100, 36.1, at);
      }
    };
    // As the segment stage: the frame and its ROIs are recorded, its ROIs classified together (they
    // reach the classifier together), then the frame is done.
    const frames = store.cameraFrameRepository();
    const ROIS_PER_FRAME = 20;
    let frameId = 0;
    let frameSha = '';
    let pending: ClassifiedFrame[] = [];
    const add = (i: number, at: number): void => {
      if (options.cameraFrames && i % ROIS_PER_FRAME === 0) {
        const rois = Array.from({ length: ROIS_PER_FRAME }, (_, k) => cameraRoi(k + 1, roi(i + k, at).frame.file.sha256, i + k));
        frameSha = createHash('sha256').update(`bench-frame/${i}`).digest('hex');
        frameId = frames.recordSegmented({
          sha256: frameSha, relPath: `frames/${String(i / ROIS_PER_FRAME).padStart(7, '0')}.png`,
          bytes: 4_194_304, mtimeMs: at, width: 2048, height: 2048, format: 'png', polarity: 'bright-field', backgroundGrey: 221.4, components: 24,
          rejected: { small: 3, large: 0, border: 1, overflow: 0 }, pixelSizeUm: 12.5, volumeM3: null, capturedAt: at, arrivedAt: at, segmentedAt: at, segmentMs: 100, rois,
        });
      }
      if (!options.cameraFrames) return addRois([roi(i, at)], at);
      pending.push(roi(i, at));
      if (i % ROIS_PER_FRAME !== ROIS_PER_FRAME - 1) return;
      addRois(pending, at);
      pending = [];
      frames.markDone(frameId, { sha256: frameSha, relPath: `frames/${i}.png`, bytes: 4_194_304, mtimeMs: null }, at);
    };
    const backlog = options.backlog ?? 0;
    const t0 = Date.now();
    for (let i = 0; i < backlog; i++) add(i, t0 - (backlog - i) * 31);
    const sender = new SyncSender({
      ...benchSenderOptions(store, ctx.instrument, proxy.url, logger),
      maxDelayMs: options.maxDelayMs,
      nav: options.nav ? { trackIntervalMs: 10_000, pollMs: 2000 } : null,
      cameraFrames: options.cameraFrames ? { pollMs: 2000 } : null,
    });
    await sender.start();
    rig.defer(() => sender.stop());
    let rois = backlog;
    let lastAdd = Date.now();
    if (backlog === 0) {
      log(`sync live: ${perSecond} ROIs/s for ${seconds} s, latency budget ${options.maxDelayMs / 1000} s${options.nav ? ', with positions, track and volume' : ''}${options.cameraFrames ? ', with camera frames' : ''}`);
      const started = Date.now();
      while (Date.now() - started < seconds * 1000) {
        add(rois++, Date.now());
        lastAdd = Date.now();
        sender.wake();
        await new Promise((r) => setTimeout(r, 1000 / perSecond));
      }
    } else {
      log(`sync backlog: ${backlog} ROIs queued${options.nav ? ' with positions, track and volume' : ''}${options.cameraFrames ? ', with camera frames' : ''}`);
    }
    const deadline = Date.now() + 10 * 60_000;
    // Drained: nothing queued, and (with nav) every series read into the outbox.
    for (;;) {
      const s = sender.status();
      if (s.queued.records === 0 && Date.now() - lastAdd > (options.nav || options.cameraFrames ? 2500 : 0)) break;
      if (Date.now() > deadline) throw new Error('sync live bench did not drain in 10 minutes');
      await new Promise((r) => setTimeout(r, 200));
    }
    const s = sender.status();
    return {
      mode: backlog > 0 ? `backlog of ${backlog}` : `${perSecond} ROIs/s for ${seconds} s`,
      maxDelayS: options.maxDelayMs / 1000,
      nav: options.nav ? 'positions, track, volume' : 'none',
      cameraFrames: options.cameraFrames ? `${ROIS_PER_FRAME} ROIs each` : 'none',
      rois,
      batches: s.ackedBatches,
      recordsPerBatch: Math.round((s.ackedRecords / Math.max(1, s.ackedBatches)) * 10) / 10,
      mqttBytesPerRoi: Math.round(s.bytesPerRoi ?? 0),
      allMqttBytesPerRoi: Math.round(s.wireBytes / rois),
      compressionRatio: Math.round((s.compressionRatio ?? 0) * 10) / 10,
    };
  } finally {
    await rig.close();
  }
}

/** A ROI's place and measures in its camera frame, not round numbers (as segmentation measures them). */
function cameraRoi(index: number, sha256: string, i: number): CameraFrameRoiInsert {
  const r = (k: number): number => ((i * 7919 + k * 104_729) % 1000) / 1000 + Math.sin(i * 12.9898 + k) * 1e-4;
  const areaPx = 40 + Math.floor(4000 * r(7));
  const majorPx = 8 + 80 * r(8);
  const minorPx = majorPx * (0.2 + 0.8 * r(9));
  return {
    index, sha256, relPath: `rois/${sha256.slice(0, 16)}.png`,
    x: Math.floor(2000 * r(10)), y: Math.floor(2000 * r(11)), width: 10 + Math.floor(200 * r(3)), height: 10 + Math.floor(150 * r(4)),
    cropX: 0, cropY: 0, cropWidth: 1, cropHeight: 1, areaPx, majorPx, minorPx, orientationDeg: 180 * r(12) - 89.9, meanGrey: 30 + 150 * r(13),
    areaUm2: areaPx * 12.5 * 12.5, majorUm: majorPx * 12.5, minorUm: minorPx * 12.5,
  };
}
