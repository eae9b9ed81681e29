// The shore database on SQLite (better-sqlite3): the default, for ingesters on one machine.
// Several ingester processes may share the file (WAL, busy timeout); across machines use PostgreSQL.
import { openDatabase, type SqliteDatabase } from '../store/db.js';
import { SHORE_ADDED_COLUMNS, SHORE_SCHEMA } from './sql.js';
import type { Op, ShoreDriver } from './store.js';
import { PlankwatchError } from '../errors.js';

export class SqliteShoreDriver implements ShoreDriver {
  readonly dialect = 'sqlite' as const;
  private readonly path: string;
  private db: SqliteDatabase | undefined;

  constructor(options: { path: string }) {
    this.path = options.path;
  }

  /** The open connection (tests and exports). */
  get database(): SqliteDatabase {
    if (!this.db) throw new PlankwatchError('PW_E_INTERNAL', 'shore database not open');
    return this.db;
  }

  open(): Promise<void> {
    if (this.db) return Promise.resolve();
    const db = openDatabase(this.path, { busyTimeoutMs: 30_000 });
    db.transaction(() => {
      for (const sql of SHORE_SCHEMA) db.exec(sql);
      for (const { table, column, type } of SHORE_ADDED_COLUMNS) {
        const has = db.prepare(`SELECT 1 FROM pragma_table_info(?) WHERE name = ?`).get(table, column) !== undefined;
        if (!has) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
      }
    }).immediate();
    this.db = db;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
    return Promise.resolve();
  }

  transaction(ops: readonly Op[]): Promise<number[]> {
    const db = this.database;
    try {
      const run = db.transaction(() => ops.map((op) => db.prepare(op.sql).run(...(op.params as unknown[])).changes));
      return Promise.resolve(run.immediate());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  query<T>(sql: string, params: unknown[]): Promise<T[]> {
    try {
      return Promise.resolve(this.database.prepare(sql).all(...params) as T[]);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
