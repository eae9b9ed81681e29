// The shore schema and every statement the ingester runs, written once for SQLite and PostgreSQL.
// Statements use `?` placeholders; `forDialect` turns them into `$1, $2…` for PostgreSQL.
// Every write is an idempotent upsert keyed by the record's identity, so a batch delivered twice
// (after a reconnect, a crash, or by two ingesters) changes nothing the second time.

export type Dialect = 'sqlite' | 'postgres';

/** Tables (portable types: SQLite maps BIGINT to INTEGER and DOUBLE PRECISION to REAL affinity). */
export const SHORE_SCHEMA: readonly string[] = [
  // One row per record received: the gap report is computed from here.
  `CREATE TABLE IF NOT EXISTS shore_records (
    instrument  TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    record_key  TEXT   NOT NULL,
    queued_at   BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (instrument, seq)
  )`,
  `CREATE TABLE IF NOT EXISTS shore_predictions (
    instrument       TEXT   NOT NULL,
    sha256           TEXT   NOT NULL,
    ensemble_version TEXT   NOT NULL,
    rel_path         TEXT   NOT NULL,
    bytes            BIGINT NOT NULL,
    width            BIGINT,
    height           BIGINT,
    area             BIGINT,
    area_um2         DOUBLE PRECISION,
    format           TEXT,
    arrived_at       BIGINT NOT NULL,
    classified_at    BIGINT NOT NULL,
    label            TEXT   NOT NULL,
    probability      DOUBLE PRECISION NOT NULL,
    margin           DOUBLE PRECISION NOT NULL,
    disagreement     DOUBLE PRECISION NOT NULL,
    top_k            TEXT   NOT NULL,
    members          TEXT   NOT NULL,
    seq              BIGINT NOT NULL,
    PRIMARY KEY (instrument, sha256, ensemble_version)
  )`,
  `CREATE INDEX IF NOT EXISTS shore_predictions_time ON shore_predictions (instrument, classified_at)`,
  `CREATE TABLE IF NOT EXISTS shore_counts (
    instrument   TEXT   NOT NULL,
    window_ms    BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    label        TEXT   NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (instrument, window_ms, window_start, label)
  )`,
  `CREATE TABLE IF NOT EXISTS shore_rejects (
    instrument   TEXT   NOT NULL,
    window_ms    BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    code         TEXT   NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (instrument, window_ms, window_start, code)
  )`,
  `CREATE TABLE IF NOT EXISTS shore_models (
    instrument       TEXT   NOT NULL,
    ensemble_version TEXT   NOT NULL,
    members          TEXT   NOT NULL,
    seq              BIGINT NOT NULL,
    PRIMARY KEY (instrument, ensemble_version)
  )`,
  `CREATE TABLE IF NOT EXISTS shore_label_events (
    instrument  TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    sha256      TEXT   NOT NULL,
    state       TEXT   NOT NULL,
    label       TEXT   NOT NULL,
    labelled_by TEXT,
    labelled_at BIGINT NOT NULL,
    PRIMARY KEY (instrument, seq)
  )`,
  `CREATE TABLE IF NOT EXISTS shore_labels (
    instrument  TEXT   NOT NULL,
    sha256      TEXT   NOT NULL,
    state       TEXT   NOT NULL,
    label       TEXT   NOT NULL,
    labelled_by TEXT,
    labelled_at BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (instrument, sha256)
  )`,
  `CREATE TABLE IF NOT EXISTS shore_thumbnails (
    instrument TEXT   NOT NULL,
    sha256     TEXT   NOT NULL,
    format     TEXT,
    width      BIGINT,
    height     BIGINT,
    data       TEXT,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (instrument, sha256)
  )`,
  // Each ROI's position and water as the ship's navigation stage tagged it (the latest tag wins).
  `CREATE TABLE IF NOT EXISTS shore_positions (
    instrument    TEXT   NOT NULL,
    sha256        TEXT   NOT NULL,
    t_ms          BIGINT NOT NULL,
    time_source   TEXT   NOT NULL,
    lat           DOUBLE PRECISION,
    lon           DOUBLE PRECISION,
    depth_m       DOUBLE PRECISION,
    temperature_c DOUBLE PRECISION,
    salinity      DOUBLE PRECISION,
    quality       TEXT   NOT NULL,
    env_quality   TEXT   NOT NULL,
    tagged_at     BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (instrument, sha256)
  )`,
  // The ship's track and CTD series, decimated on board (sync.trackIntervalS).
  `CREATE TABLE IF NOT EXISTS shore_track (
    instrument TEXT   NOT NULL,
    t_ms       BIGINT NOT NULL,
    lat        DOUBLE PRECISION NOT NULL,
    lon        DOUBLE PRECISION NOT NULL,
    sog_kn     DOUBLE PRECISION,
    PRIMARY KEY (instrument, t_ms)
  )`,
  `CREATE TABLE IF NOT EXISTS shore_env (
    instrument    TEXT   NOT NULL,
    t_ms          BIGINT NOT NULL,
    depth_m       DOUBLE PRECISION,
    temperature_c DOUBLE PRECISION,
    salinity      DOUBLE PRECISION,
    PRIMARY KEY (instrument, t_ms)
  )`,
  // Sampled volume in cells (a minute by half a metre); each record's cells are added, never replaced.
  // depth_cell is the cell's shallower bound in millimetres, -1 for an unknown depth (a key part cannot be NULL).
  `CREATE TABLE IF NOT EXISTS shore_volumes (
    instrument TEXT   NOT NULL,
    record_key TEXT   NOT NULL,
    t_ms       BIGINT NOT NULL,
    depth_cell BIGINT NOT NULL,
    depth_m    DOUBLE PRECISION,
    volume_m3  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (instrument, record_key, t_ms, depth_cell)
  )`,
  `CREATE INDEX IF NOT EXISTS shore_volumes_time ON shore_volumes (instrument, t_ms)`,
  // Whole camera frames (ingest.mode frames): frame_id is the ship's camera_frames id; rois the ROIs kept.
  `CREATE TABLE IF NOT EXISTS shore_camera_frames (
    instrument    TEXT   NOT NULL,
    sha256        TEXT   NOT NULL,
    frame_id      BIGINT NOT NULL,
    rel_path      TEXT   NOT NULL,
    captured_at   BIGINT NOT NULL,
    bytes         BIGINT NOT NULL,
    width         BIGINT NOT NULL,
    height        BIGINT NOT NULL,
    format        TEXT   NOT NULL,
    pixel_size_um DOUBLE PRECISION,
    volume_m3     DOUBLE PRECISION,
    rois          BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (instrument, sha256)
  )`,
  `CREATE INDEX IF NOT EXISTS shore_camera_frames_time ON shore_camera_frames (instrument, captured_at)`,
  // Each ROI cut from one: sha256 is the ROI image's (shore_predictions.sha256), the box and
  // measures in pixels of the camera frame; area_um2 NULL where the pixel size was unknown.
  `CREATE TABLE IF NOT EXISTS shore_camera_frame_rois (
    instrument          TEXT   NOT NULL,
    camera_frame_sha256 TEXT   NOT NULL,
    roi_index           BIGINT NOT NULL,
    camera_frame_id     BIGINT NOT NULL,
    sha256              TEXT   NOT NULL,
    x                   BIGINT NOT NULL,
    y                   BIGINT NOT NULL,
    width               BIGINT NOT NULL,
    height              BIGINT NOT NULL,
    area_px             BIGINT NOT NULL,
    area_um2            DOUBLE PRECISION,
    major_px            DOUBLE PRECISION NOT NULL,
    minor_px            DOUBLE PRECISION NOT NULL,
    orientation_deg     DOUBLE PRECISION NOT NULL,
    mean_grey           DOUBLE PRECISION NOT NULL,
    seq                 BIGINT NOT NULL,
    PRIMARY KEY (instrument, camera_frame_sha256, roi_index)
  )`,
  `CREATE INDEX IF NOT EXISTS shore_camera_frame_rois_sha256 ON shore_camera_frame_rois (instrument, sha256)`,
];

/**
 * Columns added to a shore table after it was first created: a shore database made before them
 * gains each when a driver opens it (SQLite: when the column is missing; PostgreSQL: ADD COLUMN
 * IF NOT EXISTS). NULL in the rows received before.
 */
export const SHORE_ADDED_COLUMNS: readonly { table: string; column: string; type: string }[] = [
  // The organism area in µm² of a ROI the camera cut (ship migration 10; camera.pixelSizeUm known).
  { table: 'shore_predictions', column: 'area_um2', type: 'DOUBLE PRECISION' },
];

/** The upserts, with `?` placeholders, and the dialect's name for a two-argument maximum. */
function statements(greatest: string) {
  return {
    record: `INSERT INTO shore_records (instrument, seq, kind, record_key, queued_at, received_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, seq) DO NOTHING`,
    prediction: `INSERT INTO shore_predictions (instrument, sha256, ensemble_version, rel_path, bytes, width, height, area, area_um2, format,
        arrived_at, classified_at, label, probability, margin, disagreement, top_k, members, seq)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, sha256, ensemble_version) DO NOTHING`,
    // Counts only grow within a window: the larger of two snapshots is the later one, whatever order they arrive in.
    count: `INSERT INTO shore_counts (instrument, window_ms, window_start, window_end, label, count) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, window_ms, window_start, label) DO UPDATE SET count = ${greatest}(shore_counts.count, excluded.count)`,
    reject: `INSERT INTO shore_rejects (instrument, window_ms, window_start, window_end, code, count) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, window_ms, window_start, code) DO UPDATE SET count = ${greatest}(shore_rejects.count, excluded.count)`,
    model: `INSERT INTO shore_models (instrument, ensemble_version, members, seq) VALUES (?, ?, ?, ?)
      ON CONFLICT (instrument, ensemble_version) DO NOTHING`,
    labelEvent: `INSERT INTO shore_label_events (instrument, seq, sha256, state, label, labelled_by, labelled_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, seq) DO NOTHING`,
    // The latest change wins: sequence numbers follow the order the ship committed them.
    label: `INSERT INTO shore_labels (instrument, sha256, state, label, labelled_by, labelled_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, sha256) DO UPDATE SET state = excluded.state, label = excluded.label,
        labelled_by = excluded.labelled_by, labelled_at = excluded.labelled_at, seq = excluded.seq
      WHERE excluded.seq > shore_labels.seq`,
    thumbnail: `INSERT INTO shore_thumbnails (instrument, sha256, format, width, height, data, seq) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, sha256) DO UPDATE SET format = excluded.format, width = excluded.width, height = excluded.height,
        data = excluded.data, seq = excluded.seq
      WHERE shore_thumbnails.data IS NULL AND excluded.data IS NOT NULL`,
    // A later tag wins (a ROI held past a gap, tagged again once the next fix came).
    position: `INSERT INTO shore_positions (instrument, sha256, t_ms, time_source, lat, lon, depth_m, temperature_c, salinity, quality, env_quality, tagged_at, seq)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, sha256) DO UPDATE SET t_ms = excluded.t_ms, time_source = excluded.time_source, lat = excluded.lat,
        lon = excluded.lon, depth_m = excluded.depth_m, temperature_c = excluded.temperature_c, salinity = excluded.salinity,
        quality = excluded.quality, env_quality = excluded.env_quality, tagged_at = excluded.tagged_at, seq = excluded.seq
      WHERE excluded.tagged_at > shore_positions.tagged_at OR (excluded.tagged_at = shore_positions.tagged_at AND excluded.seq > shore_positions.seq)`,
    trackPoint: `INSERT INTO shore_track (instrument, t_ms, lat, lon, sog_kn) VALUES (?, ?, ?, ?, ?) ON CONFLICT (instrument, t_ms) DO NOTHING`,
    envPoint: `INSERT INTO shore_env (instrument, t_ms, depth_m, temperature_c, salinity) VALUES (?, ?, ?, ?, ?) ON CONFLICT (instrument, t_ms) DO NOTHING`,
    volumeCell: `INSERT INTO shore_volumes (instrument, record_key, t_ms, depth_cell, depth_m, volume_m3) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, record_key, t_ms, depth_cell) DO NOTHING`,
    // A camera frame and its ROIs are sent once they are final: the first copy stays.
    cameraFrame: `INSERT INTO shore_camera_frames (instrument, sha256, frame_id, rel_path, captured_at, bytes, width, height, format, pixel_size_um, volume_m3, rois, seq)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, sha256) DO NOTHING`,
    cameraRoi: `INSERT INTO shore_camera_frame_rois (instrument, camera_frame_sha256, roi_index, camera_frame_id, sha256, x, y, width, height,
        area_px, area_um2, major_px, minor_px, orientation_deg, mean_grey, seq)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (instrument, camera_frame_sha256, roi_index) DO NOTHING`,
    summary: `SELECT count(*) AS records, coalesce(max(seq), 0) AS max_seq, coalesce(min(seq), 0) AS min_seq, max(received_at) AS last_received_at
      FROM shore_records WHERE instrument = ?`,
    // Gaps at or after `from`: pairs of neighbours more than 1 apart.
    gaps: `SELECT seq + 1 AS gap_from, next_seq - 1 AS gap_to FROM (
        SELECT seq, LEAD(seq) OVER (ORDER BY seq) AS next_seq FROM shore_records WHERE instrument = ? AND seq >= ?
      ) t WHERE next_seq > seq + 1 ORDER BY seq LIMIT ?`,
    instruments: `SELECT DISTINCT instrument FROM shore_records ORDER BY instrument`,
  };
}

export type ShoreStatements = ReturnType<typeof statements>;

/** `?` → `$1, $2…` (no statement here has a `?` inside a string literal). */
export function toNumberedParams(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The statements for one dialect. */
export function forDialect(dialect: Dialect): ShoreStatements {
  const s = statements(dialect === 'postgres' ? 'GREATEST' : 'max');
  if (dialect === 'sqlite') return s;
  const out = {} as ShoreStatements;
  for (const [k, v] of Object.entries(s)) (out as Record<string, string>)[k] = toNumberedParams(v);
  return out;
}
