// The navigation and environment tables (migration 7) as the nav stage, the exports and the review
// page use them: ship fixes and CTD samples as time series, each stored ROI's position and water,
// the sampled volume, and the concentrations computed from them. What is interpolated, and how, is
// the nav stage's; this file only keeps and finds. Statements are prepared once; every batch is one
// transaction; nothing awaits.
import type { SqliteDatabase } from './db.js';

/** A ship fix to store; any field but the time may be unknown (null). */
export interface NavFixInsert {
  tMs: number;
  source: string;
  lat?: number | null;
  lon?: number | null;
  sogKn?: number | null;
  cogDeg?: number | null;
  /** Speed through water (VHW), knots. */
  stwKn?: number | null;
  /** GGA fix quality (0 invalid, 1 GPS, 2 DGPS...). */
  fixQuality?: number | null;
  satellites?: number | null;
  hdop?: number | null;
  receivedAt: number;
}

/** A CTD (environment) sample to store. */
export interface EnvSampleInsert {
  tMs: number;
  source: string;
  depthM?: number | null;
  pressureDbar?: number | null;
  temperatureC?: number | null;
  salinity?: number | null;
  receivedAt: number;
}

/** Sampled volume accrued at an instant. */
export interface VolumeInsert {
  tMs: number;
  volumeM3: number;
  source: string;
  cameraFrameId?: number | null;
  /** Depth where it was sampled; null: filled in later by the nav stage. */
  depthM?: number | null;
}

export type TagQuality = 'interpolated' | 'held' | 'missing';
export type TimeSource = 'filename' | 'exif' | 'sidecar' | 'arrival';

/** One ROI's position and water at its capture time (a roi_positions row, camel-cased). */
export interface RoiPosition {
  frameId: number;
  tMs: number;
  timeSource: TimeSource;
  lat: number | null;
  lon: number | null;
  depthM: number | null;
  temperatureC: number | null;
  salinity: number | null;
  /** Of lat/lon. */
  quality: TagQuality;
  /** Seconds to the nearer sample when held; the bracketing interval when interpolated. */
  gapS: number | null;
  /** Of depth, temperature and salinity. */
  envQuality: TagQuality;
  envGapS: number | null;
  taggedAt: number;
}

/** A time series value. */
export interface TimedValue {
  t: number;
  value: number;
}

/** A position at an instant. */
export interface TrackPoint {
  t: number;
  lat: number;
  lon: number;
}

/** The samples on either side of an instant (either may be absent). */
export interface Bracket<T> {
  before?: T;
  after?: T;
}

export type EnvField = 'depth_m' | 'temperature_c' | 'salinity';

/** A volume_samples row. */
export interface VolumeRow {
  id: number;
  t: number;
  volumeM3: number;
  source: string;
  depthM: number | null;
}

/** A stored ROI in a capture-time range, with its current label (validated label, else the latest prediction's). */
export interface TaggedRoi {
  frameId: number;
  t: number;
  label: string;
  depthM: number | null;
  lat: number | null;
  lon: number | null;
}

/** A concentrations row, camel-cased. */
export interface ConcentrationRow {
  windowMs: number;
  windowStart: number;
  windowEnd: number;
  /** 0: the whole water column of the window. */
  binM: number;
  depthMinM: number | null;
  depthMaxM: number | null;
  label: string;
  count: number;
  volumeM3: number;
  /** Individuals per m³; null when no volume was sampled. */
  perM3: number | null;
  lat: number | null;
  lon: number | null;
  computedAt: number;
}

/** The navigation tables, for one connection; created by the Store. */
export interface NavRepository {
  transaction<T>(fn: () => T): T;
  /** Each of the insert calls writes its whole batch in one transaction. */
  insertFixes(rows: readonly NavFixInsert[]): void;
  insertEnvSamples(rows: readonly EnvSampleInsert[]): void;
  insertVolumes(rows: readonly VolumeInsert[]): void;
  /** Inserts or replaces each ROI's row (one transaction). */
  upsertRoiPositions(rows: readonly RoiPosition[]): void;
  /** The position fixes at or before `t` and at or after `t` (by fix time). */
  positionBracket(t: number): Bracket<TrackPoint>;
  /** The samples of one environment field at or before `t` and at or after `t`. */
  envBracket(field: EnvField, t: number): Bracket<TimedValue>;
  roiPosition(frameId: number): RoiPosition | undefined;
  /** Rows of these frames (those that have one). */
  roiPositions(frameIds: readonly number[]): Map<number, RoiPosition>;
  /** ROIs captured in [from, to] whose position or water is not interpolated, oldest first. */
  untagged(from: number, to: number, limit: number): RoiPosition[];
  /** ROIs captured in [from, to] with a position or water tagged 'missing', oldest first. */
  missing(from: number, to: number, limit: number): RoiPosition[];
  /** Stored frames with no roi_positions row yet (stored while the nav stage was off), oldest first. */
  framesWithoutPosition(limit: number): { frameId: number; relPath: string; arrivedAt: number }[];
  /** Position fixes in [from, to], at most `maxPoints` (evenly thinned), oldest first. */
  track(from: number, to: number, maxPoints: number): TrackPoint[];
  /** Volume rows in [from, to). */
  volumesBetween(from: number, to: number): VolumeRow[];
  /** Sum of the volume sampled in [from, to), m³. */
  volumeSum(from: number, to: number): number;
  /** Volume rows in [from, to] with no depth yet, oldest first. */
  volumesWithoutDepth(from: number, to: number, limit: number): VolumeRow[];
  /** The frame ids of these contents (those stored). */
  frameIds(sha256s: readonly string[]): Map<string, number>;
  setVolumeDepths(rows: readonly { id: number; depthM: number }[]): void;
  /** ROIs captured in [from, to) with their current label. */
  taggedRois(from: number, to: number): TaggedRoi[];
  /** Replaces the concentration rows of one window (all bins) in one transaction. */
  replaceConcentrations(windowMs: number, windowStart: number, rows: readonly ConcentrationRow[]): void;
  /** Start of the latest window with concentrations (of this width), or null. */
  latestConcentrationWindow(windowMs: number): number | null;
  /** Concentration rows of windows starting at or after `from`, oldest first; one bin size. */
  concentrations(windowMs: number, from: number, binM: number): ConcentrationRow[];
}

interface RoiRow {
  frame_id: number;
  t_ms: number;
  time_source: TimeSource;
  lat: number | null;
  lon: number | null;
  depth_m: number | null;
  temperature_c: number | null;
  salinity: number | null;
  quality: TagQuality;
  gap_s: number | null;
  env_quality: TagQuality;
  env_gap_s: number | null;
  tagged_at: number;
}

const roi = (r: RoiRow): RoiPosition => ({
  frameId: r.frame_id, tMs: r.t_ms, timeSource: r.time_source, lat: r.lat, lon: r.lon, depthM: r.depth_m,
  temperatureC: r.temperature_c, salinity: r.salinity, quality: r.quality, gapS: r.gap_s,
  envQuality: r.env_quality, envGapS: r.env_gap_s, taggedAt: r.tagged_at,
});

const n = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/** The statements behind NavRepository, prepared once per connection. */
export function createNavRepository(db: SqliteDatabase): NavRepository {
  const envBefore = (f: EnvField) => db.prepare<[number], TimedValue>(`SELECT t_ms AS t, ${f} AS value FROM env_samples WHERE ${f} IS NOT NULL AND t_ms <= ? ORDER BY t_ms DESC LIMIT 1`);
  const envAfter = (f: EnvField) => db.prepare<[number], TimedValue>(`SELECT t_ms AS t, ${f} AS value FROM env_samples WHERE ${f} IS NOT NULL AND t_ms >= ? ORDER BY t_ms ASC LIMIT 1`);
  const fields: EnvField[] = ['depth_m', 'temperature_c', 'salinity'];
  const env = Object.fromEntries(fields.map((f) => [f, { before: envBefore(f), after: envAfter(f) }])) as Record<EnvField, { before: ReturnType<typeof envBefore>; after: ReturnType<typeof envAfter> }>;
  const s = {
    fix: db.prepare(
      `INSERT INTO nav_fixes (t_ms, source, lat, lon, sog_kn, cog_deg, stw_kn, fix_quality, satellites, hdop, received_at)
       VALUES (@tMs, @source, @lat, @lon, @sogKn, @cogDeg, @stwKn, @fixQuality, @satellites, @hdop, @receivedAt)`,
    ),
    env: db.prepare(
      `INSERT INTO env_samples (t_ms, source, depth_m, pressure_dbar, temperature_c, salinity, received_at)
       VALUES (@tMs, @source, @depthM, @pressureDbar, @temperatureC, @salinity, @receivedAt)`,
    ),
    volume: db.prepare(
      `INSERT INTO volume_samples (t_ms, volume_m3, source, camera_frame_id, depth_m) VALUES (@tMs, @volumeM3, @source, @cameraFrameId, @depthM)`,
    ),
    roi: db.prepare(
      `INSERT OR REPLACE INTO roi_positions (frame_id, t_ms, time_source, lat, lon, depth_m, temperature_c, salinity, quality, gap_s, env_quality, env_gap_s, tagged_at)
       VALUES (@frameId, @tMs, @timeSource, @lat, @lon, @depthM, @temperatureC, @salinity, @quality, @gapS, @envQuality, @envGapS, @taggedAt)`,
    ),
    posBefore: db.prepare<[number], TrackPoint>(`SELECT t_ms AS t, lat, lon FROM nav_fixes WHERE lat IS NOT NULL AND lon IS NOT NULL AND t_ms <= ? ORDER BY t_ms DESC LIMIT 1`),
    posAfter: db.prepare<[number], TrackPoint>(`SELECT t_ms AS t, lat, lon FROM nav_fixes WHERE lat IS NOT NULL AND lon IS NOT NULL AND t_ms >= ? ORDER BY t_ms ASC LIMIT 1`),
    roiOne: db.prepare<[number], RoiRow>(`SELECT * FROM roi_positions WHERE frame_id = ?`),
    missing: db.prepare<[number, number, number], RoiRow>(
      `SELECT * FROM roi_positions WHERE (quality = 'missing' OR env_quality = 'missing') AND t_ms BETWEEN ? AND ? ORDER BY t_ms LIMIT ?`,
    ),
    untagged: db.prepare<[number, number, number], RoiRow>(
      `SELECT * FROM roi_positions WHERE (quality != 'interpolated' OR env_quality != 'interpolated') AND t_ms BETWEEN ? AND ? ORDER BY t_ms LIMIT ?`,
    ),
    noPosition: db.prepare<[number], { frameId: number; relPath: string; arrivedAt: number }>(
      `SELECT f.id AS frameId, f.rel_path AS relPath, f.arrived_at AS arrivedAt FROM frames f
        WHERE NOT EXISTS (SELECT 1 FROM roi_positions r WHERE r.frame_id = f.id) ORDER BY f.id LIMIT ?`,
    ),
    trackCount: db.prepare<[number, number], { n: number }>(`SELECT count(*) AS n FROM nav_fixes WHERE lat IS NOT NULL AND lon IS NOT NULL AND t_ms BETWEEN ? AND ?`),
    track: db.prepare<[number, number, number], TrackPoint>(
      `SELECT t, lat, lon FROM (SELECT t_ms AS t, lat, lon, row_number() OVER (ORDER BY t_ms) - 1 AS i FROM nav_fixes
        WHERE lat IS NOT NULL AND lon IS NOT NULL AND t_ms BETWEEN ? AND ?) WHERE i % ? = 0 ORDER BY t`,
    ),
    volumes: db.prepare<[number, number], VolumeRow>(`SELECT id, t_ms AS t, volume_m3 AS volumeM3, source, depth_m AS depthM FROM volume_samples WHERE t_ms >= ? AND t_ms < ? ORDER BY t_ms, id`),
    volumeSum: db.prepare<[number, number], { v: number | null }>(`SELECT sum(volume_m3) AS v FROM volume_samples WHERE t_ms >= ? AND t_ms < ?`),
    noDepth: db.prepare<[number, number, number], VolumeRow>(
      `SELECT id, t_ms AS t, volume_m3 AS volumeM3, source, depth_m AS depthM FROM volume_samples WHERE depth_m IS NULL AND t_ms BETWEEN ? AND ? ORDER BY t_ms LIMIT ?`,
    ),
    frameId: db.prepare<[string], { id: number }>(`SELECT id FROM frames WHERE sha256 = ?`),
    setDepth: db.prepare<[number, number]>(`UPDATE volume_samples SET depth_m = ? WHERE id = ?`),
    // The current label: a validated label wins; otherwise the frame's latest prediction.
    tagged: db.prepare<[number, number], TaggedRoi>(
      `SELECT r.frame_id AS frameId, r.t_ms AS t, coalesce(l.label, p.label) AS label, r.depth_m AS depthM, r.lat AS lat, r.lon AS lon
         FROM roi_positions r
         JOIN frames f ON f.id = r.frame_id
         JOIN predictions p ON p.id = (SELECT max(q.id) FROM predictions q WHERE q.frame_id = r.frame_id)
         LEFT JOIN labels l ON l.sha256 = f.sha256 AND l.status = 'validated'
        WHERE r.t_ms >= ? AND r.t_ms < ?`,
    ),
    deleteConc: db.prepare<[number, number]>(`DELETE FROM concentrations WHERE window_ms = ? AND window_start = ?`),
    insertConc: db.prepare(
      `INSERT INTO concentrations (window_ms, window_start, window_end, bin_m, depth_min_m, depth_max_m, label, count, volume_m3, per_m3, lat, lon, computed_at)
       VALUES (@windowMs, @windowStart, @windowEnd, @binM, @depthMinM, @depthMaxM, @label, @count, @volumeM3, @perM3, @lat, @lon, @computedAt)`,
    ),
    latestConc: db.prepare<[number], { s: number | null }>(`SELECT max(window_start) AS s FROM concentrations WHERE window_ms = ?`),
    conc: db.prepare<[number, number, number], ConcentrationRow>(
      `SELECT window_ms AS windowMs, window_start AS windowStart, window_end AS windowEnd, bin_m AS binM, depth_min_m AS depthMinM, depth_max_m AS depthMaxM,
              label, count, volume_m3 AS volumeM3, per_m3 AS perM3, lat, lon, computed_at AS computedAt
         FROM concentrations WHERE window_ms = ? AND window_start >= ? AND bin_m = ? ORDER BY window_start, depth_min_m, label`,
    ),
  };
  const tx = <A>(fn: (rows: A) => void) => db.transaction(fn);
  const insertFixes = tx((rows: readonly NavFixInsert[]) => {
    for (const r of rows) {
      s.fix.run({ tMs: r.tMs, source: r.source, lat: n(r.lat), lon: n(r.lon), sogKn: n(r.sogKn), cogDeg: n(r.cogDeg), stwKn: n(r.stwKn), fixQuality: n(r.fixQuality), satellites: n(r.satellites), hdop: n(r.hdop), receivedAt: r.receivedAt });
    }
  });
  const insertEnv = tx((rows: readonly EnvSampleInsert[]) => {
    for (const r of rows) {
      s.env.run({ tMs: r.tMs, source: r.source, depthM: n(r.depthM), pressureDbar: n(r.pressureDbar), temperatureC: n(r.temperatureC), salinity: n(r.salinity), receivedAt: r.receivedAt });
    }
  });
  const insertVolumes = tx((rows: readonly VolumeInsert[]) => {
    for (const r of rows) s.volume.run({ tMs: r.tMs, volumeM3: r.volumeM3, source: r.source, cameraFrameId: n(r.cameraFrameId), depthM: n(r.depthM) });
  });
  const upsertRois = tx((rows: readonly RoiPosition[]) => {
    for (const r of rows) s.roi.run(r);
  });
  const setDepths = tx((rows: readonly { id: number; depthM: number }[]) => {
    for (const r of rows) s.setDepth.run(r.depthM, r.id);
  });
  const replaceConc = db.transaction((windowMs: number, windowStart: number, rows: readonly ConcentrationRow[]) => {
    s.deleteConc.run(windowMs, windowStart);
    for (const r of rows) s.insertConc.run(r);
  });
  return {
    transaction: (fn) => db.transaction(fn)(),
    insertFixes: (rows) => void (rows.length > 0 && insertFixes.immediate(rows)),
    insertEnvSamples: (rows) => void (rows.length > 0 && insertEnv.immediate(rows)),
    insertVolumes: (rows) => void (rows.length > 0 && insertVolumes.immediate(rows)),
    upsertRoiPositions: (rows) => void (rows.length > 0 && upsertRois.immediate(rows)),
    positionBracket: (t) => ({ before: s.posBefore.get(t), after: s.posAfter.get(t) }),
    envBracket: (field, t) => ({ before: env[field].before.get(t), after: env[field].after.get(t) }),
    roiPosition: (frameId) => {
      const r = s.roiOne.get(frameId);
      return r ? roi(r) : undefined;
    },
    roiPositions: (frameIds) => {
      const out = new Map<number, RoiPosition>();
      for (const id of frameIds) {
        const r = s.roiOne.get(id);
        if (r) out.set(id, roi(r));
      }
      return out;
    },
    untagged: (from, to, limit) => s.untagged.all(from, to, limit).map(roi),
    missing: (from, to, limit) => s.missing.all(from, to, limit).map(roi),
    framesWithoutPosition: (limit) => s.noPosition.all(limit),
    track: (from, to, maxPoints) => {
      const count = s.trackCount.get(from, to)?.n ?? 0;
      const step = Math.max(1, Math.ceil(count / Math.max(1, maxPoints)));
      return s.track.all(from, to, step);
    },
    volumesBetween: (from, to) => s.volumes.all(from, to),
    volumeSum: (from, to) => s.volumeSum.get(from, to)?.v ?? 0,
    volumesWithoutDepth: (from, to, limit) => s.noDepth.all(from, to, limit),
    frameIds: (sha256s) => {
      const out = new Map<string, number>();
      for (const sha of sha256s) {
        const r = s.frameId.get(sha);
        if (r) out.set(sha, r.id);
      }
      return out;
    },
    setVolumeDepths: (rows) => void (rows.length > 0 && setDepths.immediate(rows)),
    taggedRois: (from, to) => s.tagged.all(from, to),
    replaceConcentrations: (windowMs, windowStart, rows) => replaceConc.immediate(windowMs, windowStart, rows),
    latestConcentrationWindow: (windowMs) => s.latestConc.get(windowMs)?.s ?? null,
    concentrations: (windowMs, from, binM) => s.conc.all(windowMs, from, binM),
  };
}
