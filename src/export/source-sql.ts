// The queries an export runs, on a ship database (frames, predictions, the review stage's labels,
// the navigation stage's roi_positions and volume_samples) or a shore database (the shore_* tables;
// written with `?` placeholders, numbered for PostgreSQL by the caller). Tables a database lacks (an
// older one, or a ship without the review or navigation stage) are left out of the join and their
// columns come back NULL. A ROI cut from a whole camera frame (camera_frame_rois, ingest.mode
// frames; shore_camera_frame_rois ashore) brings its box, measures and camera frame.

/** A camera-frame ROI's box, measures and camera frame (`cr`, `cf`), the same columns on ship and shore. */
const CAMERA_FRAME_COLS = `, cr.x AS roi_x, cr.y AS roi_y, cr.width AS roi_width, cr.height AS roi_height, cr.area_px AS roi_area_px,
      cr.major_px AS roi_major_px, cr.minor_px AS roi_minor_px, cr.orientation_deg AS roi_orientation_deg, cr.mean_grey AS roi_mean_grey,
      cf.rel_path AS camera_frame_path, cf.sha256 AS camera_frame_sha256, cf.pixel_size_um`;

/** Ship: the latest prediction per frame, its label, its position and its camera frame. Parameters: instrument, since, until. */
export function shipObjectsSql(has: (table: string) => boolean): string {
  const labels = has('labels');
  const positions = has('roi_positions');
  const cameraFrames = has('camera_frame_rois') && has('camera_frames');
  // The first ROI with these bytes (the same crop twice is one frames row: one object, not two).
  const segCols = cameraFrames
    ? CAMERA_FRAME_COLS
    : '';
  // frames.area_um2 (migration 10): the organism's area in µm², where the camera's pixel size was known.
  const areaUm2 = has('frames.area_um2') ? 'f.area_um2' : 'NULL AS area_um2';
  const labelCols = labels ? 'l.status AS state, l.label AS review_label, l.user AS labelled_by, l.at AS labelled_at' : 'NULL AS state, NULL AS review_label, NULL AS labelled_by, NULL AS labelled_at';
  const posCols = positions
    ? 'rp.t_ms AS captured_at, rp.lat, rp.lon, rp.depth_m, rp.temperature_c, rp.salinity, rp.quality AS position_quality, rp.env_quality'
    : 'NULL AS captured_at, NULL AS lat, NULL AS lon, NULL AS depth_m, NULL AS temperature_c, NULL AS salinity, NULL AS position_quality, NULL AS env_quality';
  return `SELECT ? AS instrument, f.sha256, f.rel_path, f.width, f.height, f.area, ${areaUm2}, p.classified_at, f.arrived_at,
      p.label AS predicted_label, p.probability, p.ensemble_version, ${labelCols}, ${posCols}${segCols}
    FROM predictions p JOIN frames f ON f.id = p.frame_id
      ${labels ? 'LEFT JOIN labels l ON l.sha256 = f.sha256' : ''}
      ${positions ? 'LEFT JOIN roi_positions rp ON rp.frame_id = f.id' : ''}
      ${cameraFrames ? 'LEFT JOIN camera_frame_rois cr ON cr.id = (SELECT min(id) FROM camera_frame_rois c WHERE c.sha256 = f.sha256) LEFT JOIN camera_frames cf ON cf.id = cr.camera_frame_id' : ''}
    WHERE p.id = (SELECT max(id) FROM predictions q WHERE q.frame_id = f.id)
      AND p.classified_at >= ? AND p.classified_at < ?
    ORDER BY p.classified_at, f.id`;
}

/**
 * Shore: the latest prediction per (instrument, frame), its label and its synced position.
 * Parameters: since, until, instrument, instrument (NULL: every instrument; cast so PostgreSQL
 * knows its type).
 */
export function shoreObjectsSql(has: (table: string) => boolean): string {
  const positions = has('shore_positions');
  const cameraFrames = has('shore_camera_frame_rois') && has('shore_camera_frames');
  // The same columns as the ship's; the first ROI with these bytes by camera frame and index (one object, not two).
  const segCols = cameraFrames
    ? CAMERA_FRAME_COLS
    : '';
  const segJoin = cameraFrames
    ? `LEFT JOIN shore_camera_frame_rois cr ON cr.instrument = p.instrument AND cr.sha256 = p.sha256
        AND NOT EXISTS (SELECT 1 FROM shore_camera_frame_rois c WHERE c.instrument = cr.instrument AND c.sha256 = cr.sha256
          AND (c.camera_frame_id < cr.camera_frame_id OR (c.camera_frame_id = cr.camera_frame_id AND c.roi_index < cr.roi_index)))
      LEFT JOIN shore_camera_frames cf ON cf.instrument = cr.instrument AND cf.sha256 = cr.camera_frame_sha256`
    : '';
  const posCols = positions
    ? 'sp.t_ms AS captured_at, sp.lat, sp.lon, sp.depth_m, sp.temperature_c, sp.salinity, sp.quality AS position_quality, sp.env_quality'
    : 'NULL AS captured_at, NULL AS lat, NULL AS lon, NULL AS depth_m, NULL AS temperature_c, NULL AS salinity, NULL AS position_quality, NULL AS env_quality';
  // shore_predictions.area_um2: added after the table (sql.ts SHORE_ADDED_COLUMNS); an older shore database has none.
  const areaUm2 = has('shore_predictions.area_um2') ? 'p.area_um2' : 'NULL AS area_um2';
  return `SELECT p.instrument, p.sha256, p.rel_path, p.width, p.height, p.area, ${areaUm2}, p.classified_at, p.arrived_at,
      p.label AS predicted_label, p.probability, p.ensemble_version,
      l.state, l.label AS review_label, l.labelled_by, l.labelled_at, ${posCols}${segCols}
    FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY instrument, sha256 ORDER BY classified_at DESC, ensemble_version DESC) AS rn
          FROM shore_predictions WHERE classified_at >= ? AND classified_at < ? AND (CAST(? AS TEXT) IS NULL OR instrument = ?)) p
    LEFT JOIN shore_labels l ON l.instrument = p.instrument AND l.sha256 = p.sha256
    ${positions ? 'LEFT JOIN shore_positions sp ON sp.instrument = p.instrument AND sp.sha256 = p.sha256' : ''}
    ${segJoin}
    WHERE p.rn = 1
    ORDER BY p.classified_at, p.instrument, p.sha256`;
}

/**
 * Sampled volume per window and depth bin, in [from, to). binM 0: every depth in one bin (NULL).
 * Parameters: from, to (and on a shore database, instrument twice as in shoreObjectsSql).
 * NULL when the table is missing: no volume is known.
 */
export function volumeBinsSql(kind: 'ship' | 'shore', has: (table: string) => boolean, windowMs: number, binM: number): string | null {
  const table = kind === 'ship' ? 'volume_samples' : 'shore_volumes';
  if (!has(table)) return null;
  const w = Math.trunc(windowMs);
  // Numbers are inlined (they come from the config, not the user's text): integer division must stay integral.
  const bin = binM > 0 ? `CASE WHEN depth_m IS NULL THEN NULL ELSE CAST(floor(depth_m / ${Number(binM)}) AS BIGINT) END` : 'CAST(NULL AS BIGINT)';
  const instrument = kind === 'ship' ? "'' AS instrument" : 'instrument';
  const where = kind === 'ship' ? 't_ms >= ? AND t_ms < ?' : 't_ms >= ? AND t_ms < ? AND (CAST(? AS TEXT) IS NULL OR instrument = ?)';
  return `SELECT ${instrument}, (t_ms / ${w}) * ${w} AS window_start, ${bin} AS bin, sum(volume_m3) AS volume_m3
    FROM ${table} WHERE ${where}
    GROUP BY 1, 2, 3`;
}
