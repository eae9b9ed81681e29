// The one place that opens SQLite (better-sqlite3): connection settings and schema migrations.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { PlankwatchError } from '../errors.js';
import type { Migration } from './migrations.js';

export type { SqliteDatabase };

export interface OpenDatabaseOptions {
  /** How long a writer waits for a lock held by another connection (ms). Default 5000. */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

/**
 * Opens (creating if needed, with its folder) the database file in WAL mode with
 * `synchronous=NORMAL`, `foreign_keys=ON` and a busy timeout. `:memory:` is accepted for tools.
 * Throws PW_E_DB when the file cannot be opened.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): SqliteDatabase {
  try {
    if (path !== ':memory:' && !options.readonly) mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { readonly: options.readonly ?? false });
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    throw new PlankwatchError('PW_E_DB', `Opening ${path} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** The schema version recorded in the file (`PRAGMA user_version`). */
export function schemaVersion(db: SqliteDatabase): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Applies every migration newer than the file's `user_version`, each in its own transaction
 * together with the version bump, so a crash leaves the file at a whole version.
 * Returns the versions applied (empty when already current). Throws PW_E_DB if the file is
 * newer than this program knows, or a migration fails.
 */
export function migrate(db: SqliteDatabase, migrations: readonly Migration[]): number[] {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1) throw new PlankwatchError('PW_E_INTERNAL', `Migrations must be numbered 1..n without gaps; found ${m.version} at ${i + 1}`);
  });
  const current = schemaVersion(db);
  const latest = sorted.length;
  if (current > latest) {
    throw new PlankwatchError(
      'PW_E_DB',
      `The database has schema version ${current} but this plankwatch knows only up to ${latest}; use a newer plankwatch.`,
    );
  }
  const applied: number[] = [];
  for (const m of sorted) {
    if (m.version <= current) continue;
    const step = db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    });
    try {
      step.immediate();
    } catch (err) {
      throw new PlankwatchError('PW_E_DB', `Migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
    }
    applied.push(m.version);
  }
  return applied;
}
