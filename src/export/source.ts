// The objects an export writes, read from a ship database (frames, predictions and the review
// stage's labels) or a shore database (shore_predictions, shore_labels, shore_thumbnails) on SQLite
// or PostgreSQL. One row per ROI: its latest prediction and its current label state.
import Database from 'better-sqlite3';
import { PlankwatchError } from '../errors.js';
import { PostgresShoreDriver } from '../shore/postgres.js';
import { toNumberedParams } from '../shore/sql.js';
import type { LabelState } from '../sync/records.js';
import { shipObjectsSql, shoreObjectsSql, volumeBinsSql } from './source-sql.js';

export type TagQuality = 'interpolated' | 'held' | 'missing';

export interface ExportObject {
  instrument: string;
  sha256: string;
  relPath: string;
  width: number | null;
  height: number | null;
  area: number | null;
  /** The same area in µm² (where camera.pixelSizeUm was known: ship databases from migration 10, shore ones that received it); null otherwise. */
  areaUm2: number | null;
  /** ms since epoch. */
  classifiedAt: number;
  arrivedAt: number;
  predictedLabel: string;
  probability: number;
  ensembleVersion: string;
  state: LabelState;
  /** The validated (or dubious) label when reviewed, else the predicted one. */
  label: string;
  labelledBy: string | null;
  labelledAt: number | null;
  /** Capture time (ms) the navigation stage tagged the ROI at; the arrival time when it was not tagged. */
  capturedAt: number;
  /** Position and water at capture (navigation stage); null where unknown. */
  lat: number | null;
  lon: number | null;
  depthM: number | null;
  temperatureC: number | null;
  salinity: number | null;
  /** Quality of lat/lon and of depth/temperature/salinity: 'interpolated', 'held', 'missing'; null: never tagged. */
  positionQuality: TagQuality | null;
  envQuality: TagQuality | null;
  /** The whole camera frame the ROI was cut from (ingest.mode frames; on a shore database once synced); null otherwise. */
  cameraFrame: CameraFrameMeasures | null;
}

/** A ROI's place and measures in its camera frame, in pixels of the frame (camera_frame_rois). */
export interface CameraFrameMeasures {
  /** The camera frame's relative path and SHA-256. */
  relPath: string;
  sha256: string;
  /** The organism's box in the camera frame. */
  x: number;
  y: number;
  width: number;
  height: number;
  areaPx: number;
  majorPx: number;
  minorPx: number;
  orientationDeg: number;
  /** Mean grey of the organism's pixels in the flat-fielded frame (0–255). */
  meanGrey: number;
  /** µm per pixel (camera.pixelSizeUm when it was segmented); null: unknown. */
  pixelSizeUm: number | null;
}

/** Sampled volume (m³) summed per instrument, event window and depth bin (see sampling.ts). */
export interface VolumeBin {
  instrument: string;
  /** Window start, ms since epoch (a multiple of the window). */
  windowStart: number;
  /** floor(depth / binM); null: sampled at an unknown depth, or binM 0 (every depth). */
  bin: number | null;
  volumeM3: number;
}

export interface ExportFilter {
  /** ms since epoch, inclusive. */
  since?: number;
  /** ms since epoch, exclusive. */
  until?: number;
  /** Shore databases: only this instrument. */
  instrument?: string;
}

export type SourceKind = 'ship' | 'shore';

/** The filter in the CLI's words, for messages: "(--since …, --instrument …)" or "(no --since, --until or --instrument)". */
export function describeFilter(filter: ExportFilter = {}): string {
  const parts: string[] = [];
  if (filter.since !== undefined) parts.push(`--since ${new Date(filter.since).toISOString()}`);
  if (filter.until !== undefined) parts.push(`--until ${new Date(filter.until).toISOString()}`);
  if (filter.instrument !== undefined) parts.push(`--instrument ${filter.instrument}`);
  return `(${parts.length > 0 ? parts.join(', ') : 'no --since, --until or --instrument'})`;
}

/** A row as either database returns it (PostgreSQL gives BIGINT as a string). */
interface Row {
  instrument: string;
  sha256: string;
  rel_path: string;
  width: number | string | null;
  height: number | string | null;
  area: number | string | null;
  /** Only on a ship database from migration 10 on, or a shore database with the column. */
  area_um2?: number | string | null;
  classified_at: number | string;
  arrived_at: number | string;
  predicted_label: string;
  probability: number | string;
  ensemble_version: string;
  state: string | null;
  review_label: string | null;
  labelled_by: string | null;
  labelled_at: number | string | null;
  captured_at: number | string | null;
  lat: number | null;
  lon: number | null;
  depth_m: number | null;
  temperature_c: number | null;
  salinity: number | null;
  position_quality: string | null;
  env_quality: string | null;
  /** Only on a ship database holding camera frames; NULL for a ROI not cut from one. */
  roi_x?: number | null;
  roi_y?: number | null;
  roi_width?: number | null;
  roi_height?: number | null;
  roi_area_px?: number | null;
  roi_major_px?: number | null;
  roi_minor_px?: number | null;
  roi_orientation_deg?: number | null;
  roi_mean_grey?: number | null;
  camera_frame_path?: string | null;
  camera_frame_sha256?: string | null;
  pixel_size_um?: number | null;
}

/** Where a PostgreSQL shore database is (shore.postgresUrl, shore.postgresPasswordFile). */
export interface PostgresSource {
  url: string;
  password?: string;
}

/** Rows fetched from PostgreSQL per round trip while an export streams. */
const PG_FETCH_ROWS = 2000;

/** A read-only view of a ship or shore database (SQLite file, or a PostgreSQL shore) for exports. */
export class ExportSource {
  private readonly db: Database.Database | undefined;
  private readonly pg: PostgresShoreDriver | undefined;
  readonly kind: SourceKind;
  /** Where the rows come from, for messages: a file path or the PostgreSQL URL without a password. */
  readonly location: string;
  private readonly shipInstrument: string;

  private constructor(from: { db: Database.Database } | { pg: PostgresShoreDriver }, kind: SourceKind, location: string, shipInstrument: string) {
    this.db = 'db' in from ? from.db : undefined;
    this.pg = 'pg' in from ? from.pg : undefined;
    this.kind = kind;
    this.location = location;
    this.shipInstrument = shipInstrument;
  }

  /** Opens the SQLite file `path` read-only and tells ship from shore by its tables. Throws PW_E_EXPORT. */
  static open(path: string, shipInstrument: string): ExportSource {
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new PlankwatchError('PW_E_EXPORT', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
    }
    const has = (t: string): boolean => db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(t) !== undefined;
    if (has('shore_predictions')) return new ExportSource({ db }, 'shore', path, shipInstrument);
    if (has('predictions') && has('frames')) return new ExportSource({ db }, 'ship', path, shipInstrument);
    db.close();
    throw new PlankwatchError('PW_E_EXPORT', `${path} is neither a plankwatch ship database nor a shore database.`);
  }

  /**
   * Connects to a PostgreSQL shore database (read only: no table is created) and checks that it
   * holds the shore tables. Throws PW_E_EXPORT naming shore.postgresUrl.
   */
  static async openPostgres(options: PostgresSource): Promise<ExportSource> {
    const location = redactUrl(options.url);
    const pg = new PostgresShoreDriver({ url: options.url, ...(options.password !== undefined ? { password: options.password } : {}), maxConnections: 2, createSchema: false });
    let found: boolean;
    try {
      await pg.open();
      const [row] = await pg.query<{ found: boolean }>(`SELECT to_regclass('shore_predictions') IS NOT NULL AS found`, []);
      found = row?.found === true;
    } catch (err) {
      await pg.close().catch(() => undefined);
      throw new PlankwatchError(
        'PW_E_EXPORT',
        `cannot read the PostgreSQL shore database ${location} (shore.postgresUrl, password from shore.postgresPasswordFile): ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (!found) {
      await pg.close();
      throw new PlankwatchError('PW_E_EXPORT', `${location} (shore.postgresUrl) has no shore_predictions table: it is not a plankwatch shore database, or no ingester has written to it yet.`);
    }
    return new ExportSource({ pg }, 'shore', location, '');
  }

  async close(): Promise<void> {
    this.db?.close();
    await this.pg?.close();
  }

  /** Thumbnail (base64 JPEG) stored ashore for a frame, if any. */
  async thumbnail(instrument: string, sha256: string): Promise<Buffer | null> {
    if (this.kind !== 'shore') return null;
    const sql = `SELECT data FROM shore_thumbnails WHERE instrument = ? AND sha256 = ? AND data IS NOT NULL`;
    const row = this.pg
      ? (await this.pg.query<{ data: string }>(toNumberedParams(sql), [instrument, sha256]))[0]
      : (this.sqlite().prepare(sql).get(instrument, sha256) as { data: string } | undefined);
    return row ? Buffer.from(row.data, 'base64') : null;
  }

  /** The objects in classification time order, one per ROI. */
  async *objects(filter: ExportFilter = {}): AsyncGenerator<ExportObject> {
    const since = filter.since ?? 0;
    const until = filter.until ?? Number.MAX_SAFE_INTEGER;
    const instrument = filter.instrument ?? null;
    const has = await this.tables();
    if (this.pg) {
      for await (const page of this.pg.cursor<Row>(toNumberedParams(shoreObjectsSql(has)), [since, until, instrument, instrument], PG_FETCH_ROWS)) {
        for (const r of page) yield toObject(r);
      }
      return;
    }
    const db = this.sqlite();
    const rows = this.kind === 'ship' ? db.prepare(shipObjectsSql(has)).iterate(this.shipInstrument, since, until) : db.prepare(shoreObjectsSql(has)).iterate(since, until, instrument, instrument);
    for (const r of rows as Iterable<Row>) yield toObject(r);
  }

  /**
   * Sampled volume per instrument, window of `windowMs` and depth bin of `binM` metres (0: one bin),
   * over [from, to) by sample time. Empty when the database holds no volume table.
   */
  async volumeBins(windowMs: number, binM: number, from: number, to: number, instrument: string | null = null): Promise<VolumeBin[]> {
    const has = await this.tables();
    const sql = volumeBinsSql(this.kind, has, windowMs, binM);
    if (sql === null) return [];
    type V = { instrument: string; window_start: number | string; bin: number | string | null; volume_m3: number | string };
    const params = this.kind === 'ship' ? [from, to] : [from, to, instrument, instrument];
    const rows = this.pg ? await this.pg.query<V>(toNumberedParams(sql), params) : (this.sqlite().prepare(sql).all(...params) as V[]);
    return rows.map((r) => ({
      instrument: this.kind === 'ship' ? this.shipInstrument : r.instrument,
      windowStart: Number(r.window_start),
      bin: r.bin === null ? null : Number(r.bin),
      volumeM3: Number(r.volume_m3),
    }));
  }

  private tableSet: Set<string> | undefined;

  /** Which tables the database holds (looked up once), and as "table.column" the columns of those that gained some later. */
  private async tables(): Promise<(table: string) => boolean> {
    if (!this.tableSet) {
      const grown = this.kind === 'ship' ? 'frames' : 'shore_predictions';
      const rows = this.pg
        ? await this.pg.query<{ name: string }>(
            `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()
             UNION ALL SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`,
            [grown],
          )
        : (this.sqlite().prepare(`SELECT name FROM sqlite_master WHERE type = 'table' UNION ALL SELECT ? || '.' || name FROM pragma_table_info(?)`).all(grown, grown) as { name: string }[]);
      this.tableSet = new Set(rows.map((r) => r.name));
    }
    const set = this.tableSet;
    return (t) => set.has(t);
  }

  private sqlite(): Database.Database {
    if (!this.db) throw new PlankwatchError('PW_E_INTERNAL', 'not a SQLite source');
    return this.db;
  }
}

/** PostgreSQL returns BIGINT columns as strings: numbers here, whatever the database. */
function num(v: number | string | null): number | null {
  return v === null ? null : Number(v);
}

function quality(v: string | null): TagQuality | null {
  return v === 'interpolated' || v === 'held' || v === 'missing' ? v : null;
}

function toObject(r: Row): ExportObject {
  const state: LabelState = r.state === 'validated' || r.state === 'dubious' ? r.state : 'predicted';
  return {
    instrument: r.instrument,
    sha256: r.sha256,
    relPath: r.rel_path,
    width: num(r.width),
    height: num(r.height),
    area: num(r.area),
    areaUm2: r.area_um2 === undefined || r.area_um2 === null ? null : Number(r.area_um2),
    classifiedAt: Number(r.classified_at),
    arrivedAt: Number(r.arrived_at),
    predictedLabel: r.predicted_label,
    probability: Number(r.probability),
    ensembleVersion: r.ensemble_version,
    state,
    label: state === 'predicted' ? r.predicted_label : (r.review_label ?? r.predicted_label),
    labelledBy: state === 'predicted' ? null : r.labelled_by,
    labelledAt: state === 'predicted' ? null : num(r.labelled_at),
    capturedAt: r.captured_at === null ? Number(r.arrived_at) : Number(r.captured_at),
    lat: num(r.lat),
    lon: num(r.lon),
    depthM: num(r.depth_m),
    temperatureC: num(r.temperature_c),
    salinity: num(r.salinity),
    positionQuality: quality(r.position_quality),
    envQuality: quality(r.env_quality),
    cameraFrame: cameraFrameOf(r),
  };
}

function cameraFrameOf(r: Row): CameraFrameMeasures | null {
  if (r.camera_frame_sha256 === undefined || r.camera_frame_sha256 === null || r.camera_frame_path === undefined || r.camera_frame_path === null) return null;
  const n = (v: number | null | undefined): number => Number(v ?? 0);
  return {
    relPath: r.camera_frame_path,
    sha256: r.camera_frame_sha256,
    x: n(r.roi_x),
    y: n(r.roi_y),
    width: n(r.roi_width),
    height: n(r.roi_height),
    areaPx: n(r.roi_area_px),
    majorPx: n(r.roi_major_px),
    minorPx: n(r.roi_minor_px),
    orientationDeg: n(r.roi_orientation_deg),
    meanGrey: n(r.roi_mean_grey),
    pixelSizeUm: r.pixel_size_um === undefined || r.pixel_size_um === null || r.pixel_size_um <= 0 ? null : r.pixel_size_um,
  };
}

/** postgres://user:secret@host/db → postgres://user:***@host/db. */
function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}
