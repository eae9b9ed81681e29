// The objects an export writes, read from a ship database (frames, predictions and the review
// stage's labels) or a shore database (shore_predictions, shore_labels, shore_thumbnails). One row
// per ROI: its latest prediction and its current label state.
import Database from 'better-sqlite3';
import { PlankwatchError } from '../errors.js';
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

interface Row {
  instrument: string;
  sha256: string;
  rel_path: string;
  width: number | null;
  height: number | null;
  area: number | null;
  classified_at: number;
  arrived_at: number;
  predicted_label: string;
  probability: number;
  ensemble_version: string;
  state: string | null;
  review_label: string | null;
  labelled_by: string | null;
  labelled_at: number | null;
}

/** A read-only view of a ship or shore SQLite database for exports. */
export class ExportSource {
  private readonly db: Database.Database;
  readonly kind: SourceKind;
  private readonly shipInstrument: string;

  private constructor(db: Database.Database, kind: SourceKind, shipInstrument: string) {
    this.db = db;
    this.kind = kind;
    this.shipInstrument = shipInstrument;
  }

  /** Opens `path` read-only and tells ship from shore by its tables. Throws PW_E_EXPORT. */
  static open(path: string, shipInstrument: string): ExportSource {
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new PlankwatchError('PW_E_EXPORT', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
    }
    const has = (t: string): boolean => db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(t) !== undefined;
    if (has('shore_predictions')) return new ExportSource(db, 'shore', shipInstrument);
    if (has('predictions') && has('frames')) return new ExportSource(db, 'ship', shipInstrument);
    db.close();
    throw new PlankwatchError('PW_E_EXPORT', `${path} is neither a plankwatch ship database nor a shore database.`);
  }

  close(): void {
    this.db.close();
  }

  /** Thumbnail (base64 JPEG) stored ashore for a frame, if any. */
  thumbnail(instrument: string, sha256: string): Buffer | null {
    if (this.kind !== 'shore') return null;
    const row = this.db.prepare(`SELECT data FROM shore_thumbnails WHERE instrument = ? AND sha256 = ? AND data IS NOT NULL`).get(instrument, sha256) as
      | { data: string }
      | undefined;
    return row ? Buffer.from(row.data, 'base64') : null;
  }

  /** The objects in classification time order, one per ROI. */
  *objects(filter: ExportFilter = {}): Generator<ExportObject> {
    const since = filter.since ?? 0;
    const until = filter.until ?? Number.MAX_SAFE_INTEGER;
    const rows =
      this.kind === 'ship'
        ? this.db.prepare(this.shipSql()).iterate(this.shipInstrument, since, until)
        : this.db.prepare(SHORE_SQL).iterate(since, until, filter.instrument ?? null, filter.instrument ?? null);
    for (const r of rows as Iterable<Row>) {
      const state: LabelState = r.state === 'validated' || r.state === 'dubious' ? r.state : 'predicted';
      yield {
        instrument: r.instrument,
        sha256: r.sha256,
        relPath: r.rel_path,
        width: r.width,
        height: r.height,
        area: r.area,
        classifiedAt: Number(r.classified_at),
        arrivedAt: Number(r.arrived_at),
        predictedLabel: r.predicted_label,
        probability: r.probability,
        ensembleVersion: r.ensemble_version,
        state,
        label: state === 'predicted' ? r.predicted_label : (r.review_label ?? r.predicted_label),
        labelledBy: state === 'predicted' ? null : r.labelled_by,
        labelledAt: state === 'predicted' ? null : r.labelled_at,
      };
    }
  }

  /** Ship: the latest prediction per frame; the review stage's `labels` table when it exists. */
  private shipSql(): string {
    const hasLabels = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'labels'`).get() !== undefined;
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

const SHORE_SQL = `SELECT p.instrument, p.sha256, p.rel_path, p.width, p.height, p.area, p.classified_at, p.arrived_at,
    p.label AS predicted_label, p.probability, p.ensemble_version,
    l.state, l.label AS review_label, l.labelled_by, l.labelled_at
  FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY instrument, sha256 ORDER BY classified_at DESC, ensemble_version DESC) AS rn
        FROM shore_predictions WHERE classified_at >= ? AND classified_at < ? AND (? IS NULL OR instrument = ?)) p
  LEFT JOIN shore_labels l ON l.instrument = p.instrument AND l.sha256 = p.sha256
  WHERE p.rn = 1
  ORDER BY p.classified_at, p.instrument, p.sha256`;
