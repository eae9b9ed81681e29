// The camera frame tables (migration 8) as the segment stage and the review page use them: each
// whole camera frame once, the paths it was seen under, its statistics, each ROI cut from it with
// its place, and one volume_samples row per camera frame whose imaged volume is known. Statements
// are prepared once; each write is one transaction; nothing awaits.
import type { SqliteDatabase } from './db.js';

/** One ROI as segmented: its image (content and path) and its geometry in the camera frame. */
/** One ROI cut from a camera frame, as segmentation measured it. */
export interface CameraFrameRoiInsert {
  /** 1, 2, 3… in the order found (top to bottom). */
  index: number;
  /** The ROI image's SHA-256 (frames.sha256) and its path under the archive folder. */
  sha256: string;
  relPath: string;
  /** Bounding box of the organism in the camera frame. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The ROI image: the box with the margin, clipped to the frame. */
  cropX: number;
  cropY: number;
  cropWidth: number;
  cropHeight: number;
  /** Organism pixels. */
  areaPx: number;
  /** Lengths of the axes of the ellipse with the same second moments (pixels). */
  majorPx: number;
  minorPx: number;
  /** Angle of the major axis from the x axis, degrees in (-90, 90]. */
  orientationDeg: number;
  /** Mean grey of the organism's pixels in the flat-fielded frame (0-255). */
  meanGrey: number;
  /** Null while the pixel size is unknown. */
  areaUm2: number | null;
  majorUm: number | null;
  minorUm: number | null;
}

export interface CameraFrameInsert {
  sha256: string;
  relPath: string;
  bytes: number;
  mtimeMs: number | null;
  width: number;
  height: number;
  format: string;
  polarity: 'bright-field' | 'dark-field';
  backgroundGrey: number;
  components: number;
  rejected: { small: number; large: number; border: number; overflow: number };
  pixelSizeUm: number | null;
  volumeM3: number | null;
  capturedAt: number;
  arrivedAt: number;
  segmentedAt: number;
  segmentMs: number;
  rois: CameraFrameRoiInsert[];
}

export interface CameraFrameRow {
  id: number;
  sha256: string;
  relPath: string;
  width: number;
  height: number;
  format: string;
  particles: number;
  volumeM3: number | null;
  capturedAt: number;
  doneAt: number | null;
}

export type CameraFrameRoiRow = CameraFrameRoiInsert & { cameraFrameId: number };

/** Where an ROI came from: its camera frame, and its box in it. */
export interface RoiPlace {
  cameraFrame: CameraFrameRow;
  roi: CameraFrameRoiRow;
}

/** What the camera frame tables hold, all time: `plankwatch status` and /metrics. */
export interface CameraFrameTotals {
  /** Camera frames segmented (their ROIs recorded); of those, done (every ROI stored). */
  segmented: number;
  done: number;
  /** ROIs cut from them. */
  rois: number;
  /** Paths found holding a camera frame already done (another name, or the same name again). */
  duplicates: number;
  /** Rejected files that are not ROIs cut here: in ingest.mode "frames", the quarantined camera frames. */
  quarantined: number;
}

export interface CameraFrameRepository {
  /** Counts, all time. */
  totals(): CameraFrameTotals;
  /** The camera frame with these bytes, done or not. */
  bySha(sha256: string): CameraFrameRow | undefined;
  /** Its ROIs, in order. */
  roisOf(cameraFrameId: number): CameraFrameRoiRow[];
  /**
   * Stores a segmented camera frame with its ROIs (and its volume sample when the volume is known);
   * one not done yet (segmented before a stop) has its ROIs replaced. Returns its id.
   */
  recordSegmented(frame: CameraFrameInsert): number;
  /** Every ROI is stored: the camera frame is done, and its path known to the next scans. */
  markDone(cameraFrameId: number, source: { sha256: string; relPath: string; bytes: number; mtimeMs: number | null }, at: number): void;
  /** The same bytes seen again (another name, or the same name again): recorded, not segmented again. */
  recordDuplicate(source: { sha256: string; relPath: string; bytes: number; mtimeMs: number | null }, at: number): void;
  /** How a path at this size and mtime was settled as a camera frame, or null. */
  sourceOutcome(relPath: string, size: number, mtimeMs: number): 'processed' | 'duplicate' | null;
  /** The camera frame and box of the ROI whose image has these bytes (the first, if cut twice). */
  placeOf(roiSha256: string): RoiPlace | undefined;
}

interface FrameDbRow {
  id: number;
  sha256: string;
  rel_path: string;
  width: number;
  height: number;
  format: string;
  particles: number;
  volume_m3: number | null;
  captured_at: number;
  done_at: number | null;
}

interface RoiDbRow {
  camera_frame_id: number;
  roi_index: number;
  sha256: string;
  rel_path: string;
  x: number;
  y: number;
  width: number;
  height: number;
  crop_x: number;
  crop_y: number;
  crop_width: number;
  crop_height: number;
  area_px: number;
  major_px: number;
  minor_px: number;
  orientation_deg: number;
  mean_grey: number;
  area_um2: number | null;
  major_um: number | null;
  minor_um: number | null;
}

/** Source of the volume_samples rows this stage writes. */
export const CAMERA_FRAME_VOLUME_SOURCE = 'camera-frame';

/** The names of the camera frames' running totals in the `totals` table. */
const TOTAL = {
  segmented: 'camera_frames.segmented',
  done: 'camera_frames.done',
  rois: 'camera_frames.rois',
  duplicates: 'camera_frames.duplicates',
} as const;

export function createCameraFrameRepository(db: SqliteDatabase): CameraFrameRepository {
  const s = {
    bySha: db.prepare<[string], FrameDbRow>(
      `SELECT id, sha256, rel_path, width, height, format, particles, volume_m3, captured_at, done_at FROM camera_frames WHERE sha256 = ?`,
    ),
    byId: db.prepare<[number], FrameDbRow>(
      `SELECT id, sha256, rel_path, width, height, format, particles, volume_m3, captured_at, done_at FROM camera_frames WHERE id = ?`,
    ),
    rois: db.prepare<[number], RoiDbRow>(`SELECT * FROM camera_frame_rois WHERE camera_frame_id = ? ORDER BY roi_index`),
    roiBySha: db.prepare<[string], RoiDbRow>(`SELECT * FROM camera_frame_rois WHERE sha256 = ? ORDER BY id LIMIT 1`),
    insertFrame: db.prepare<[string, string, number, number, number, string, string, number, number, number, number, number, number, number, number | null, number | null, number, number, number, number], { id: number }>(
      `INSERT INTO camera_frames (sha256, rel_path, bytes, width, height, format, polarity, background_grey, particles, components,
         rejected_small, rejected_large, rejected_border, rejected_overflow, pixel_size_um, volume_m3, captured_at, arrived_at, segmented_at, segment_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (sha256) DO UPDATE SET particles = excluded.particles, components = excluded.components,
         background_grey = excluded.background_grey, rejected_small = excluded.rejected_small, rejected_large = excluded.rejected_large,
         rejected_border = excluded.rejected_border, rejected_overflow = excluded.rejected_overflow, segmented_at = excluded.segmented_at,
         segment_ms = excluded.segment_ms
       RETURNING id`,
    ),
    deleteRois: db.prepare<[number]>(`DELETE FROM camera_frame_rois WHERE camera_frame_id = ?`),
    insertRoi: db.prepare<[number, number, string, string, number, number, number, number, number, number, number, number, number, number, number, number, number, number | null, number | null, number | null]>(
      `INSERT INTO camera_frame_rois (camera_frame_id, roi_index, sha256, rel_path, x, y, width, height, crop_x, crop_y, crop_width, crop_height,
         area_px, major_px, minor_px, orientation_deg, mean_grey, area_um2, major_um, minor_um)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteVolume: db.prepare<[number, string]>(`DELETE FROM volume_samples WHERE camera_frame_id = ? AND source = ?`),
    insertVolume: db.prepare<[number, number, string, number]>(`INSERT INTO volume_samples (t_ms, volume_m3, source, camera_frame_id) VALUES (?, ?, ?, ?)`),
    markDone: db.prepare<[number, number]>(`UPDATE camera_frames SET done_at = ? WHERE id = ? AND done_at IS NULL`),
    upsertSource: db.prepare<[string, string, string, number, number | null, number]>(
      `INSERT INTO camera_frame_sources (sha256, rel_path, role, bytes, mtime_ms, seen_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (rel_path, sha256) DO UPDATE SET bytes = excluded.bytes, mtime_ms = excluded.mtime_ms, seen_at = excluded.seen_at`,
    ),
    // Running totals (migration 12), raised in the same transactions as the rows they count.
    bumpTotal: db.prepare<[string, number]>(
      `INSERT INTO totals (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`,
    ),
    // The insert itself must pass value >= 0: a drop (ROIs replaced by fewer) only updates.
    lowerTotal: db.prepare<[number, string]>(`UPDATE totals SET value = value - ? WHERE name = ?`),
    runningTotals: db.prepare<[], { name: string; value: number }>(`SELECT name, value FROM totals WHERE name LIKE 'camera_frames.%'`),
    // Quarantined camera frames: the rejects that are not ROIs cut here (the rejects table is small;
    // each is looked up in the ROIs' sha256 index).
    quarantined: db.prepare<[], { n: number }>(
      `SELECT count(*) AS n FROM rejects r WHERE r.sha256 IS NULL OR NOT EXISTS (SELECT 1 FROM camera_frame_rois c WHERE c.sha256 = r.sha256)`,
    ),
    // A database at an older schema opened read-only (before migration 12) has no running totals: counted.
    counted: db.prepare<[], Omit<CameraFrameTotals, 'quarantined'>>(
      `SELECT (SELECT count(*) FROM camera_frames) AS segmented, (SELECT count(*) FROM camera_frames WHERE done_at IS NOT NULL) AS done,
              (SELECT count(*) FROM camera_frame_rois) AS rois, (SELECT count(*) FROM camera_frame_sources WHERE role = 'duplicate') AS duplicates`,
    ),
    sourceKnown: db.prepare<[string, string], { one: number }>(`SELECT 1 AS one FROM camera_frame_sources WHERE rel_path = ? AND sha256 = ?`),
    sourceRole: db.prepare<[string, number, number], { role: 'original' | 'duplicate' }>(
      `SELECT role FROM camera_frame_sources WHERE rel_path = ? AND bytes = ? AND (mtime_ms IS NULL OR mtime_ms = ?) ORDER BY id DESC LIMIT 1`,
    ),
  };
  const frameRow = (r: FrameDbRow): CameraFrameRow => ({
    id: r.id,
    sha256: r.sha256,
    relPath: r.rel_path,
    width: r.width,
    height: r.height,
    format: r.format,
    particles: r.particles,
    volumeM3: r.volume_m3,
    capturedAt: r.captured_at,
    doneAt: r.done_at,
  });
  const roiRow = (r: RoiDbRow): CameraFrameRoiRow => ({
    cameraFrameId: r.camera_frame_id,
    index: r.roi_index,
    sha256: r.sha256,
    relPath: r.rel_path,
    x: r.x,
    y: r.y,
    width: r.width,
    height: r.height,
    cropX: r.crop_x,
    cropY: r.crop_y,
    cropWidth: r.crop_width,
    cropHeight: r.crop_height,
    areaPx: r.area_px,
    majorPx: r.major_px,
    minorPx: r.minor_px,
    orientationDeg: r.orientation_deg,
    meanGrey: r.mean_grey,
    areaUm2: r.area_um2,
    majorUm: r.major_um,
    minorUm: r.minor_um,
  });
  const record = db.transaction((f: CameraFrameInsert): number => {
    // One segmented before a stop is segmented again: its ROIs replaced, counted once.
    const known = s.bySha.get(f.sha256) !== undefined;
    const row = s.insertFrame.get(
      f.sha256, f.relPath, f.bytes, f.width, f.height, f.format, f.polarity, f.backgroundGrey, f.rois.length, f.components,
      f.rejected.small, f.rejected.large, f.rejected.border, f.rejected.overflow, f.pixelSizeUm, f.volumeM3, f.capturedAt, f.arrivedAt, f.segmentedAt, f.segmentMs,
    )!;
    const replaced = s.deleteRois.run(row.id).changes;
    if (!known) s.bumpTotal.run(TOTAL.segmented, 1);
    const more = f.rois.length - replaced;
    if (more >= 0) s.bumpTotal.run(TOTAL.rois, more);
    else s.lowerTotal.run(-more, TOTAL.rois);
    for (const r of f.rois) {
      s.insertRoi.run(row.id, r.index, r.sha256, r.relPath, r.x, r.y, r.width, r.height, r.cropX, r.cropY, r.cropWidth, r.cropHeight,
        r.areaPx, r.majorPx, r.minorPx, r.orientationDeg, r.meanGrey, r.areaUm2, r.majorUm, r.minorUm);
    }
    s.deleteVolume.run(row.id, CAMERA_FRAME_VOLUME_SOURCE);
    if (f.volumeM3 !== null) s.insertVolume.run(f.capturedAt, f.volumeM3, CAMERA_FRAME_VOLUME_SOURCE, row.id);
    return row.id;
  });
  const done = db.transaction((id: number, src: { sha256: string; relPath: string; bytes: number; mtimeMs: number | null }, at: number) => {
    s.bumpTotal.run(TOTAL.done, s.markDone.run(at, id).changes);
    s.upsertSource.run(src.sha256, src.relPath, 'original', src.bytes, src.mtimeMs, at);
  });
  const duplicate = db.transaction((src: { sha256: string; relPath: string; bytes: number; mtimeMs: number | null }, at: number) => {
    if (!s.sourceKnown.get(src.relPath, src.sha256)) s.bumpTotal.run(TOTAL.duplicates, 1);
    s.upsertSource.run(src.sha256, src.relPath, 'duplicate', src.bytes, src.mtimeMs, at);
  });
  return {
    totals: () => {
      const quarantined = s.quarantined.get()?.n ?? 0;
      const running = new Map(s.runningTotals.all().map((r) => [r.name, r.value]));
      if (!running.has(TOTAL.segmented)) return { ...s.counted.get()!, quarantined };
      const n = (name: string) => running.get(name) ?? 0;
      return { segmented: n(TOTAL.segmented), done: n(TOTAL.done), rois: n(TOTAL.rois), duplicates: n(TOTAL.duplicates), quarantined };
    },
    bySha: (sha256) => {
      const r = s.bySha.get(sha256);
      return r ? frameRow(r) : undefined;
    },
    roisOf: (id) => s.rois.all(id).map(roiRow),
    recordSegmented: (f) => record.immediate(f),
    markDone: (id, src, at) => done.immediate(id, src, at),
    recordDuplicate: (src, at) => duplicate.immediate(src, at),
    sourceOutcome: (relPath, size, mtimeMs) => {
      const r = s.sourceRole.get(relPath, size, Math.trunc(mtimeMs));
      return r ? (r.role === 'original' ? 'processed' : 'duplicate') : null;
    },
    placeOf: (roiSha256) => {
      const r = s.roiBySha.get(roiSha256);
      if (!r) return undefined;
      const f = s.byId.get(r.camera_frame_id);
      return f ? { cameraFrame: frameRow(f), roi: roiRow(r) } : undefined;
    },
  };
}
