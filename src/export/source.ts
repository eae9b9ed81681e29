// The objects an export writes, read from a ship database (frames, predictions and the review
// stage's labels) or a shore database (shore_predictions, shore_labels, shore_thumbnails) on SQLite
// or PostgreSQL. One row per ROI: its latest prediction and its current label state.
import Database from 'better-sqlite3';
import { PlankwatchError } from '../errors.js';
import { PostgresShoreDriver } from '../shore/postgres.js';
import { toNumberedParams } from '../shore/sql.js';
import type { LabelState } from '../sync/records.js';

export interface ExportObject {
  instrument: string;
  sha256: string;
  relPath: string;
  width: number | null;
  height: number | null;
  area: number | null;
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
  classified_at: number | string;
  arrived_at: number | string;
  predicted_label: string;
  probability: number | string;
  ensemble_version: string;
  state: string | null;
  review_label: string | null;
  labelled_by: string | null;
  labelled_at: number | string | null;
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
    if (this.pg) {
      for await (const page of this.pg.cursor<Row>(toNumberedParams(SHORE_SQL), [since, until, instrument, instrument], PG_FETCH_ROWS)) {
        for (const r of page) yield toObject(r);
      }
      return;
    }
    const db = this.sqlite();
    const rows = this.kind === 'ship' ? db.prepare(this.shipSql(db)).iterate(this.shipInstrument, since, until) : db.prepare(SHORE_SQL).iterate(since, until, instrument, instrument);
    for (const r of rows as Iterable<Row>) yield toObject(r);
  }

  private sqlite(): Database.Database {
    if (!this.db) throw new PlankwatchError('PW_E_INTERNAL', 'not a SQLite source');
    return this.db;
  }

  /** Ship: the latest prediction per frame; the review stage's `labels` table when it exists. */
  private shipSql(db: Database.Database): string {
    const hasLabels = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'labels'`).get() !== undefined;
    const labelCols = hasLabels ? 'l.status AS state, l.label AS review_label, l.user AS labelled_by, l.at AS labelled_at' : 'NULL AS state, NULL AS review_label, NULL AS labelled_by, NULL AS labelled_at';
    const labelJoin = hasLabels ? 'LEFT JOIN labels l ON l.sha256 = f.sha256' : '';
    return `SELECT ? AS instrument, f.sha256, f.rel_path, f.width, f.height, f.area, p.classified_at, f.arrived_at,
        p.label AS predicted_label, p.probability, p.ensemble_version, ${labelCols}
      FROM predictions p JOIN frames f ON f.id = p.frame_id ${labelJoin}
      WHERE p.id = (SELECT max(id) FROM predictions q WHERE q.frame_id = f.id)
        AND p.classified_at >= ? AND p.classified_at < ?
      ORDER BY p.classified_at, f.id`;
  }
}

/** PostgreSQL returns BIGINT columns as strings: numbers here, whatever the database. */
function num(v: number | string | null): number | null {
  return v === null ? null : Number(v);
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
    classifiedAt: Number(r.classified_at),
    arrivedAt: Number(r.arrived_at),
    predictedLabel: r.predicted_label,
    probability: Number(r.probability),
    ensembleVersion: r.ensemble_version,
    state,
    label: state === 'predicted' ? r.predicted_label : (r.review_label ?? r.predicted_label),
    labelledBy: state === 'predicted' ? null : r.labelled_by,
    labelledAt: state === 'predicted' ? null : num(r.labelled_at),
  };
}

/** postgres://user:secret@host/db → postgres://user:***@host/db. */
function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

// The instrument parameter is cast so PostgreSQL knows its type when it is NULL.
const SHORE_SQL = `SELECT p.instrument, p.sha256, p.rel_path, p.width, p.height, p.area, p.classified_at, p.arrived_at,
    p.label AS predicted_label, p.probability, p.ensemble_version,
    l.state, l.label AS review_label, l.labelled_by, l.labelled_at
  FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY instrument, sha256 ORDER BY classified_at DESC, ensemble_version DESC) AS rn
        FROM shore_predictions WHERE classified_at >= ? AND classified_at < ? AND (CAST(? AS TEXT) IS NULL OR instrument = ?)) p
  LEFT JOIN shore_labels l ON l.instrument = p.instrument AND l.sha256 = p.sha256
  WHERE p.rn = 1
  ORDER BY p.classified_at, p.instrument, p.sha256`;
