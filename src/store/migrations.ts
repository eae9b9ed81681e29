// Numbered schema migrations. Append new ones at the end; never edit one that has shipped.
// The applied version is kept in `PRAGMA user_version`.

/** One schema step: applied once, in a transaction, in version order. */
export interface Migration {
  /** 1, 2, 3…: strictly increasing, no gaps. */
  version: number;
  /** Short name for logs. */
  name: string;
  sql: string;
}

// Conventions: timestamps are integer ms since the epoch (`*_at`, `*_ms`); JSON columns are TEXT
// checked with json_valid; tables are STRICT so a wrong type is an error, not a silent cast.
/**
 * sync_outbox rebuilt with its kind check taking `kinds` (SQLite cannot change a CHECK in place):
 * the rows and indexes as they were. Each migration that adds record kinds calls it.
 */
function outboxWithKinds(kinds: string[]): string {
  return `
${outboxTable('sync_outbox_new', kinds)}
      INSERT INTO sync_outbox_new SELECT instrument, seq, kind, priority, key, payload, bytes, created_at, updated_at, sent_at, acked_at FROM sync_outbox;
      DROP TABLE sync_outbox;
      ALTER TABLE sync_outbox_new RENAME TO sync_outbox;
${OUTBOX_INDEXES}`;
}

/** The sync outbox's table, by this name, taking records of these kinds (migration 4 and its rebuilds). */
function outboxTable(name: string, kinds: string[]): string {
  return `      CREATE TABLE ${name} (
        instrument TEXT    NOT NULL,
        seq        INTEGER NOT NULL CHECK (seq > 0),
        kind       TEXT    NOT NULL CHECK (kind IN (${kinds.map((k) => `'${k}'`).join(', ')})),
        priority   INTEGER NOT NULL,
        key        TEXT    NOT NULL,
        payload    TEXT    NOT NULL CHECK (json_valid(payload)),
        bytes      INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        sent_at    INTEGER,
        acked_at   INTEGER,
        PRIMARY KEY (instrument, seq)
      ) STRICT, WITHOUT ROWID;`;
}

const OUTBOX_INDEXES = `      CREATE INDEX sync_outbox_pending ON sync_outbox (instrument, priority, seq) WHERE acked_at IS NULL;
      CREATE INDEX sync_outbox_key ON sync_outbox (instrument, kind, key);`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'frames, sources, predictions, counts, rejects',
    sql: `
      -- One row per distinct image content. sha256 is the identity; rel_path is the first path seen.
      CREATE TABLE frames (
        id            INTEGER PRIMARY KEY,
        sha256        TEXT    NOT NULL UNIQUE CHECK (length(sha256) = 64),
        rel_path      TEXT    NOT NULL,
        bytes         INTEGER NOT NULL CHECK (bytes >= 0),
        width         INTEGER,
        height        INTEGER,
        area          INTEGER,
        format        TEXT,
        arrived_at    INTEGER NOT NULL,
        classified_at INTEGER,
        stored_at     INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX frames_classified_at ON frames (classified_at);

      -- Every path a frame was seen under, at the size and mtime it had: lets a rescan skip done paths.
      CREATE TABLE frame_sources (
        id        INTEGER PRIMARY KEY,
        sha256    TEXT    NOT NULL REFERENCES frames (sha256) ON DELETE CASCADE,
        rel_path  TEXT    NOT NULL,
        role      TEXT    NOT NULL CHECK (role IN ('original', 'duplicate')),
        bytes     INTEGER NOT NULL,
        mtime_ms  INTEGER,
        seen_at   INTEGER NOT NULL,
        UNIQUE (rel_path, sha256)
      ) STRICT;
      CREATE INDEX frame_sources_sha256 ON frame_sources (sha256);

      -- One ensemble result per frame and ensemble version (a later model may classify a frame again).
      CREATE TABLE predictions (
        id               INTEGER PRIMARY KEY,
        frame_id         INTEGER NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
        ensemble_version TEXT    NOT NULL,
        label            TEXT    NOT NULL,
        probability      REAL    NOT NULL,
        margin           REAL    NOT NULL,
        disagreement     REAL    NOT NULL,
        top_k            TEXT    NOT NULL CHECK (json_valid(top_k)),
        classified_at    INTEGER NOT NULL,
        UNIQUE (frame_id, ensemble_version)
      ) STRICT;
      CREATE INDEX predictions_label ON predictions (label);

      -- What each ensemble member said for that prediction: top-1 in columns, full top-k as JSON.
      CREATE TABLE member_predictions (
        id            INTEGER PRIMARY KEY,
        prediction_id INTEGER NOT NULL REFERENCES predictions (id) ON DELETE CASCADE,
        member        TEXT    NOT NULL,
        version       TEXT    NOT NULL,
        label         TEXT    NOT NULL,
        probability   REAL    NOT NULL,
        top_k         TEXT    NOT NULL CHECK (json_valid(top_k)),
        UNIQUE (prediction_id, member)
      ) STRICT;

      -- Live counts per epoch-aligned window of window_ms, by predicted label. Absolute values.
      CREATE TABLE counts (
        window_ms    INTEGER NOT NULL CHECK (window_ms > 0),
        window_start INTEGER NOT NULL,
        window_end   INTEGER NOT NULL,
        label        TEXT    NOT NULL,
        count        INTEGER NOT NULL CHECK (count >= 0),
        PRIMARY KEY (window_ms, window_start, label)
      ) STRICT, WITHOUT ROWID;

      -- Files that could not be classified; they are moved to quarantine, never deleted.
      CREATE TABLE rejects (
        id               INTEGER PRIMARY KEY,
        rel_path         TEXT    NOT NULL,
        sha256           TEXT,
        bytes            INTEGER,
        mtime_ms         INTEGER,
        code             TEXT    NOT NULL CHECK (substr(code, 1, 5) = 'PW_E_'),
        detail           TEXT    NOT NULL,
        quarantined_path TEXT,
        at               INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX rejects_rel_path ON rejects (rel_path);
      CREATE INDEX rejects_at ON rejects (at);
    `,
  },
  {
    version: 2,
    name: 'publish log: counts sequence and windows whose final message was acknowledged',
    sql: `
      -- Small key/value state that must survive restarts (e.g. the counts message sequence number).
      CREATE TABLE meta_state (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;

      -- Closed count windows whose final MQTT message the broker acknowledged.
      CREATE TABLE published_windows (
        window_ms    INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        at           INTEGER NOT NULL,
        PRIMARY KEY (window_ms, window_start)
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: 'review: append-only label events and the current label of each reviewed frame',
    sql: `
      -- Every label change a person made (confirm, correct, mark dubious), never updated or deleted.
      -- A frame without events is still "predicted": its label is its latest prediction's.
      CREATE TABLE label_events (
        id              INTEGER PRIMARY KEY,
        sha256          TEXT    NOT NULL REFERENCES frames (sha256),
        action          TEXT    NOT NULL CHECK (action IN ('confirm', 'correct', 'dubious')),
        status          TEXT    NOT NULL CHECK (status IN ('validated', 'dubious')),
        label           TEXT    NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
        previous_status TEXT    NOT NULL CHECK (previous_status IN ('predicted', 'validated', 'dubious')),
        previous_label  TEXT    NOT NULL,
        new_class       INTEGER NOT NULL DEFAULT 0 CHECK (new_class IN (0, 1)),
        user            TEXT    NOT NULL CHECK (length(user) BETWEEN 1 AND 64),
        at              INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX label_events_sha256 ON label_events (sha256, id);
      CREATE TRIGGER label_events_no_update BEFORE UPDATE ON label_events
        BEGIN SELECT RAISE(ABORT, 'label_events is append-only'); END;
      CREATE TRIGGER label_events_no_delete BEFORE DELETE ON label_events
        BEGIN SELECT RAISE(ABORT, 'label_events is append-only'); END;

      -- The current label of each reviewed frame: the state its latest event left it in.
      CREATE TABLE labels (
        sha256   TEXT    PRIMARY KEY REFERENCES frames (sha256),
        status   TEXT    NOT NULL CHECK (status IN ('validated', 'dubious')),
        label    TEXT    NOT NULL,
        user     TEXT    NOT NULL,
        at       INTEGER NOT NULL,
        event_id INTEGER NOT NULL UNIQUE REFERENCES label_events (id)
      ) STRICT;
      CREATE INDEX labels_status_event ON labels (status, event_id);

      -- The review queue walks predictions from the most uncertain down.
      CREATE INDEX predictions_uncertainty ON predictions (disagreement DESC, margin ASC, id);
    `,
  },
  {
    version: 4,
    name: 'sync outbox: records for the shore with per-instrument sequence numbers',
    sql: `
      -- Records going ashore. seq is per instrument, contiguous, assigned when the row is created;
      -- a row's content never changes once sent (sent_at), so the shore can trust (instrument, seq).
      -- A row stays after the broker's acknowledgement (acked_at) until the shore reports it has it.
${outboxTable('sync_outbox', ['counts', 'model', 'rejects', 'prediction', 'label', 'thumbnail'])}
${OUTBOX_INDEXES}

      -- Last sequence number handed out, per instrument.
      CREATE TABLE sync_sequence (
        instrument TEXT    PRIMARY KEY,
        last_seq   INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;

      -- Progress per instrument: broker acknowledgements, what the shore confirmed, bytes on the wire.
      CREATE TABLE sync_progress (
        instrument        TEXT    PRIMARY KEY,
        last_acked_seq    INTEGER NOT NULL DEFAULT 0,
        shore_through     INTEGER NOT NULL DEFAULT 0,
        shore_missing     INTEGER NOT NULL DEFAULT 0,
        shore_at          INTEGER,
        acked_records     INTEGER NOT NULL DEFAULT 0,
        acked_predictions INTEGER NOT NULL DEFAULT 0,
        acked_batches     INTEGER NOT NULL DEFAULT 0,
        wire_bytes        INTEGER NOT NULL DEFAULT 0,
        raw_bytes         INTEGER NOT NULL DEFAULT 0,
        prediction_wire_bytes REAL NOT NULL DEFAULT 0,
        rate_bps          REAL    NOT NULL DEFAULT 0,
        last_ack_at       INTEGER
      ) STRICT, WITHOUT ROWID;

      -- MQTT bytes sent per UTC day (YYYY-MM-DD), for sync.dailyBytes.
      CREATE TABLE sync_daily (
        day   TEXT    PRIMARY KEY,
        bytes INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;

      -- Ensemble versions already queued for the shore.
      CREATE TABLE sync_models (
        ensemble_version TEXT    PRIMARY KEY,
        at               INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    name: 'fine-tuning: runs with gate metrics and decision, frozen evaluation split of validated labels',
    sql: `
      -- One row per fine-tuning run: what triggered it, the labels used, the candidate, the gate's
      -- numbers before and after (per class), the decision and its reason.
      CREATE TABLE finetune_runs (
        id                INTEGER PRIMARY KEY,
        trigger           TEXT    NOT NULL CHECK (trigger IN ('threshold', 'schedule', 'api', 'manual')),
        status            TEXT    NOT NULL CHECK (status IN ('running', 'promoted', 'rejected', 'failed', 'skipped')),
        started_at        INTEGER NOT NULL,
        finished_at       INTEGER,
        base_version      TEXT    NOT NULL,
        candidate_version TEXT,
        last_event_id     INTEGER NOT NULL DEFAULT 0,
        labels_train      INTEGER NOT NULL DEFAULT 0,
        labels_eval       INTEGER NOT NULL DEFAULT 0,
        new_classes       TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(new_classes)),
        members           TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(members)),
        gate              TEXT    CHECK (gate IS NULL OR json_valid(gate)),
        reason            TEXT,
        warnings          TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(warnings)),
        seconds           REAL
      ) STRICT;
      CREATE INDEX finetune_runs_started ON finetune_runs (started_at);

      -- Each validated frame's part, fixed the first time fine-tuning sees it: 'eval' frames are
      -- never trained on.
      CREATE TABLE finetune_split (
        sha256      TEXT    PRIMARY KEY,
        part        TEXT    NOT NULL CHECK (part IN ('train', 'eval')),
        assigned_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 6,
    name: 'totals: how files were settled, all time, kept with the rows they count',
    sql: `
      -- Running totals, raised in the same transaction as the rows they count: 'classified' (frames
      -- stored), 'duplicates' (arrivals of content already stored: a second name, or the same name
      -- again with another mtime), 'quarantined:<code>' (rejects). The one source of these figures
      -- for plankwatch status, /metrics and the MQTT stats topic. Seeded from the rows already there
      -- (a duplicate arrival at a name already recorded was not kept before: not counted).
      CREATE TABLE totals (
        name  TEXT    PRIMARY KEY,
        value INTEGER NOT NULL CHECK (value >= 0)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO totals (name, value) SELECT 'classified', count(*) FROM frames;
      INSERT INTO totals (name, value) SELECT 'duplicates', count(*) FROM frame_sources WHERE role = 'duplicate';
      INSERT INTO totals (name, value) SELECT 'quarantined:' || code, count(*) FROM rejects GROUP BY code;
    `,
  },
  {
    version: 7,
    name: 'navigation and environment: fixes, CTD samples, ROI positions, sampled volume, concentrations',
    sql: `
      -- Ship navigation as received (NMEA GGA/RMC/VTG/VHW...): one row per fix, t_ms the fix's own UTC
      -- time. A sentence that carries only speed leaves lat/lon NULL. source names the input (config).
      CREATE TABLE nav_fixes (
        id          INTEGER PRIMARY KEY,
        t_ms        INTEGER NOT NULL,
        source      TEXT    NOT NULL,
        lat         REAL    CHECK (lat IS NULL OR lat BETWEEN -90 AND 90),
        lon         REAL    CHECK (lon IS NULL OR lon BETWEEN -180 AND 180),
        sog_kn      REAL,
        cog_deg     REAL,
        stw_kn      REAL,
        fix_quality INTEGER,
        satellites  INTEGER,
        hdop        REAL,
        received_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX nav_fixes_t ON nav_fixes (t_ms);
      CREATE INDEX nav_fixes_position ON nav_fixes (t_ms) WHERE lat IS NOT NULL AND lon IS NOT NULL;

      -- CTD (or other environment) samples: depth in metres (given, or from pressure), pressure,
      -- temperature (deg C) and practical salinity; any may be NULL.
      CREATE TABLE env_samples (
        id            INTEGER PRIMARY KEY,
        t_ms          INTEGER NOT NULL,
        source        TEXT    NOT NULL,
        depth_m       REAL,
        pressure_dbar REAL,
        temperature_c REAL,
        salinity      REAL,
        received_at   INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX env_samples_t ON env_samples (t_ms);
      CREATE INDEX env_samples_depth ON env_samples (t_ms) WHERE depth_m IS NOT NULL;

      -- Where and in what water each stored ROI (one frames row) was taken, at its capture time t_ms.
      -- quality is the position's (lat/lon), env_quality that of depth, temperature and salinity:
      -- 'interpolated' between two samples, 'held' from the nearest sample past a gap (gap_s seconds),
      -- 'missing'. A row not 'interpolated' may be tagged again when later samples arrive.
      CREATE TABLE roi_positions (
        frame_id      INTEGER PRIMARY KEY REFERENCES frames (id) ON DELETE CASCADE,
        t_ms          INTEGER NOT NULL,
        time_source   TEXT    NOT NULL CHECK (time_source IN ('filename', 'exif', 'sidecar', 'arrival')),
        lat           REAL,
        lon           REAL,
        depth_m       REAL,
        temperature_c REAL,
        salinity      REAL,
        quality       TEXT    NOT NULL CHECK (quality IN ('interpolated', 'held', 'missing')),
        gap_s         REAL,
        env_quality   TEXT    NOT NULL DEFAULT 'missing' CHECK (env_quality IN ('interpolated', 'held', 'missing')),
        env_gap_s     REAL,
        tagged_at     INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX roi_positions_t ON roi_positions (t_ms);
      CREATE INDEX roi_positions_untagged ON roi_positions (t_ms) WHERE quality != 'interpolated' OR env_quality != 'interpolated';

      -- Sampled volume accrued at an instant (swept by the camera since the previous row of the same
      -- source, or imaged by one camera frame). depth_m: where it was sampled, NULL until known.
      CREATE TABLE volume_samples (
        id              INTEGER PRIMARY KEY,
        t_ms            INTEGER NOT NULL,
        volume_m3       REAL    NOT NULL CHECK (volume_m3 >= 0),
        source          TEXT    NOT NULL,
        camera_frame_id INTEGER,
        depth_m         REAL
      ) STRICT;
      CREATE INDEX volume_samples_t ON volume_samples (t_ms);

      -- Individuals per cubic metre per class, per epoch-aligned window of window_ms (by capture time)
      -- and per depth bin [depth_min_m, depth_max_m) of bin_m metres. bin_m = 0: the whole water
      -- column of the window (depth_min_m/max_m the range seen). per_m3 is NULL when no volume.
      -- A window's rows are replaced as a whole each time it is computed again.
      CREATE TABLE concentrations (
        id           INTEGER PRIMARY KEY,
        window_ms    INTEGER NOT NULL CHECK (window_ms > 0),
        window_start INTEGER NOT NULL,
        window_end   INTEGER NOT NULL,
        bin_m        REAL    NOT NULL CHECK (bin_m >= 0),
        depth_min_m  REAL,
        depth_max_m  REAL,
        label        TEXT    NOT NULL,
        count        INTEGER NOT NULL CHECK (count >= 0),
        volume_m3    REAL    NOT NULL CHECK (volume_m3 >= 0),
        per_m3       REAL,
        lat          REAL,
        lon          REAL,
        computed_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX concentrations_window ON concentrations (window_ms, window_start, bin_m);
    `,
  },
  {
    version: 8,
    name: 'camera frames: whole frames segmented into ROIs, their statistics and each ROI\'s place',
    sql: `
      -- Whole camera frames (ingest.mode "frames"), each segmented into ROIs once; sha256 is the
      -- identity. particles: ROIs kept; components: organisms found before the filters (rejected_*).
      -- captured_at: the file's mtime (else its arrival). volume_m3: water imaged (NULL: unknown).
      -- done_at: every ROI stored; NULL while (or if a stop came while) its ROIs are classified.
      CREATE TABLE camera_frames (
        id                INTEGER PRIMARY KEY,
        sha256            TEXT    NOT NULL UNIQUE CHECK (length(sha256) = 64),
        rel_path          TEXT    NOT NULL,
        bytes             INTEGER NOT NULL CHECK (bytes >= 0),
        width             INTEGER NOT NULL,
        height            INTEGER NOT NULL,
        format            TEXT    NOT NULL,
        polarity          TEXT    NOT NULL CHECK (polarity IN ('bright-field', 'dark-field')),
        background_grey   REAL    NOT NULL,
        particles         INTEGER NOT NULL CHECK (particles >= 0),
        components        INTEGER NOT NULL CHECK (components >= 0),
        rejected_small    INTEGER NOT NULL DEFAULT 0,
        rejected_large    INTEGER NOT NULL DEFAULT 0,
        rejected_border   INTEGER NOT NULL DEFAULT 0,
        rejected_overflow INTEGER NOT NULL DEFAULT 0,
        pixel_size_um     REAL,
        volume_m3         REAL    CHECK (volume_m3 IS NULL OR volume_m3 >= 0),
        captured_at       INTEGER NOT NULL,
        arrived_at        INTEGER NOT NULL,
        segmented_at      INTEGER NOT NULL,
        segment_ms        REAL    NOT NULL,
        done_at           INTEGER
      ) STRICT;
      CREATE INDEX camera_frames_captured ON camera_frames (captured_at);

      -- Every path a camera frame was seen under (as frame_sources for ROI files).
      CREATE TABLE camera_frame_sources (
        id        INTEGER PRIMARY KEY,
        sha256    TEXT    NOT NULL REFERENCES camera_frames (sha256) ON DELETE CASCADE,
        rel_path  TEXT    NOT NULL,
        role      TEXT    NOT NULL CHECK (role IN ('original', 'duplicate')),
        bytes     INTEGER NOT NULL,
        mtime_ms  INTEGER,
        seen_at   INTEGER NOT NULL,
        UNIQUE (rel_path, sha256)
      ) STRICT;

      -- Each ROI cut from a camera frame: its image (sha256, rel_path under ingest.archiveDir: the
      -- frames row once classified), the organism's box and the crop's in the camera frame (pixels),
      -- and its measures; the _um columns are NULL while camera.pixelSizeUm is 0 (unknown).
      CREATE TABLE camera_frame_rois (
        id              INTEGER PRIMARY KEY,
        camera_frame_id INTEGER NOT NULL REFERENCES camera_frames (id) ON DELETE CASCADE,
        roi_index       INTEGER NOT NULL CHECK (roi_index > 0),
        sha256          TEXT    NOT NULL CHECK (length(sha256) = 64),
        rel_path        TEXT    NOT NULL,
        x               INTEGER NOT NULL,
        y               INTEGER NOT NULL,
        width           INTEGER NOT NULL,
        height          INTEGER NOT NULL,
        crop_x          INTEGER NOT NULL,
        crop_y          INTEGER NOT NULL,
        crop_width      INTEGER NOT NULL,
        crop_height     INTEGER NOT NULL,
        area_px         INTEGER NOT NULL,
        major_px        REAL    NOT NULL,
        minor_px        REAL    NOT NULL,
        orientation_deg REAL    NOT NULL,
        mean_grey       REAL    NOT NULL,
        area_um2        REAL,
        major_um        REAL,
        minor_um        REAL,
        UNIQUE (camera_frame_id, roi_index)
      ) STRICT;
      CREATE INDEX camera_frame_rois_sha256 ON camera_frame_rois (sha256);
    `,
  },
  {
    version: 9,
    name: 'sync of the navigation series: three more record kinds, and how far each series is queued',
    sql: `
      -- sync_outbox again, its kind check taking the navigation stage's series (positions, track,
      -- volumes); rows and indexes as they were.
      ${outboxWithKinds(['counts', 'model', 'rejects', 'prediction', 'label', 'thumbnail', 'positions', 'track', 'volumes'])}

      -- Per series the sync stage reads from the navigation tables: the last row queued (an id, or
      -- a tagged_at and frame id), and the time of the last track point kept.
      CREATE TABLE sync_marks (
        name  TEXT    PRIMARY KEY,
        value INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      -- ROI positions in the order they were (re)tagged, for those incremental reads.
      CREATE INDEX roi_positions_tagged ON roi_positions (tagged_at, frame_id);
    `,
  },
  {
    version: 10,
    name: 'organism area in square micrometres, where the camera\'s pixel size is known',
    sql: `
      -- frames.area is in pixels of the ROI image, against its own background; area_um2 the same
      -- area times camera.pixelSizeUm squared (NULL: pixel size unknown, or stored before).
      ALTER TABLE frames ADD COLUMN area_um2 REAL CHECK (area_um2 IS NULL OR area_um2 >= 0);
    `,
  },
  {
    version: 11,
    name: 'sync of camera frames: two more record kinds, and camera frames in the order they were done',
    sql: `
      -- sync_outbox again, its kind check taking whole camera frames (camera_frame) and the places
      -- and measures of their ROIs (camera_rois); rows and indexes as they were.
      ${outboxWithKinds(['counts', 'model', 'rejects', 'prediction', 'label', 'thumbnail', 'positions', 'track', 'volumes', 'camera_frame', 'camera_rois'])}

      -- Camera frames in the order every ROI of theirs was stored, for the sync stage's incremental reads.
      CREATE INDEX camera_frames_done ON camera_frames (done_at, id) WHERE done_at IS NOT NULL;
    `,
  },
  {
    version: 12,
    name: 'camera frame totals kept with the rows they count',
    sql: `
      -- The camera frames' figures for plankwatch status and /metrics, raised in the same
      -- transactions as the rows (camera-frame-repository.ts) instead of counted on every read;
      -- seeded from the rows already there.
      INSERT INTO totals (name, value) SELECT 'camera_frames.segmented', count(*) FROM camera_frames;
      INSERT INTO totals (name, value) SELECT 'camera_frames.done', count(*) FROM camera_frames WHERE done_at IS NOT NULL;
      INSERT INTO totals (name, value) SELECT 'camera_frames.rois', count(*) FROM camera_frame_rois;
      INSERT INTO totals (name, value) SELECT 'camera_frames.duplicates', count(*) FROM camera_frame_sources WHERE role = 'duplicate';
    `,
  },
];
