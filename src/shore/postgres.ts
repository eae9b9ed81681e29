// The shore database on PostgreSQL (node-postgres, `pg`): the path past one machine. Several
// ingesters on several machines write to one database; every statement is an idempotent upsert
// and each batch is one transaction, so two ingesters handling the same batch cannot double a row.
// A transaction that loses a deadlock or serialisation race is retried by the ingester.
import { PlankwatchError } from '../errors.js';
import { SHORE_ADDED_COLUMNS, SHORE_SCHEMA } from './sql.js';
import type { Op, ShoreDriver } from './store.js';

/** The part of pg's API used here (pg ships no type declarations of its own). */
interface PgClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
  release(err?: Error | boolean): void;
}
interface PgPool {
  connect(): Promise<PgClient>;
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): void;
}

export interface PostgresShoreOptions {
  /** postgres://user@host:5432/db */
  url: string;
  password?: string;
  /** Connections in the pool (default 4). */
  maxConnections?: number;
  /** Create the tables when missing (default true); readers such as exports pass false. */
  createSchema?: boolean;
  onPoolError?: (err: Error) => void;
}

/** Arbitrary constant for pg_advisory_xact_lock while creating tables (two ingesters starting at once). */
const SCHEMA_LOCK = 7_264_551;

export class PostgresShoreDriver implements ShoreDriver {
  readonly dialect = 'postgres' as const;
  private readonly options: PostgresShoreOptions;
  private pool: PgPool | undefined;

  constructor(options: PostgresShoreOptions) {
    this.options = options;
  }

  async open(): Promise<void> {
    let pg: { default?: { Pool: new (config: Record<string, unknown>) => PgPool }; Pool?: new (config: Record<string, unknown>) => PgPool };
    try {
      const name = 'pg';
      pg = (await import(name)) as typeof pg;
    } catch (err) {
      throw new PlankwatchError('PW_E_SHORE_DB', 'The PostgreSQL driver (npm package "pg") is not installed: npm install pg.', { cause: err });
    }
    const Pool = pg.default?.Pool ?? pg.Pool;
    if (!Pool) throw new PlankwatchError('PW_E_SHORE_DB', 'The "pg" package has no Pool export.');
    const pool = new Pool({
      connectionString: this.options.url,
      ...(this.options.password !== undefined ? { password: this.options.password } : {}),
      max: this.options.maxConnections ?? 4,
    });
    pool.on('error', (err) => this.options.onPoolError?.(err));
    this.pool = pool;
    if (this.options.createSchema === false) return;
    const added = SHORE_ADDED_COLUMNS.map(({ table, column, type }) => `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${column} ${type}`);
    await this.transactionSql([`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`, ...SHORE_SCHEMA, ...added]);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }

  async transaction(ops: readonly Op[]): Promise<number[]> {
    const client = await this.conn().connect();
    try {
      await client.query('BEGIN');
      const changes: number[] = [];
      for (const op of ops) changes.push((await client.query(op.sql, op.params)).rowCount ?? 0);
      await client.query('COMMIT');
      client.release();
      return changes;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw err;
    }
  }

  async query<T>(sql: string, params: unknown[]): Promise<T[]> {
    return (await this.conn().query(sql, params)).rows as T[];
  }

  /**
   * Streams the rows of one query in pages of `pageRows` through a server-side cursor, in one
   * read-only transaction (a consistent snapshot; memory stays bounded however many rows match).
   */
  async *cursor<T>(sql: string, params: unknown[], pageRows = 1000): AsyncGenerator<T[]> {
    const client = await this.conn().connect();
    let ok = false;
    try {
      await client.query('BEGIN TRANSACTION READ ONLY');
      await client.query(`DECLARE plankwatch_rows NO SCROLL CURSOR FOR ${sql}`, params);
      const fetch = `FETCH FORWARD ${Math.max(1, Math.trunc(pageRows))} FROM plankwatch_rows`;
      for (;;) {
        const page = (await client.query(fetch)).rows as T[];
        if (page.length === 0) break;
        yield page;
      }
      await client.query('COMMIT');
      ok = true;
    } finally {
      if (!ok) await client.query('ROLLBACK').catch(() => undefined);
      client.release(!ok);
    }
  }

  private async transactionSql(statements: readonly string[]): Promise<void> {
    await this.transaction(statements.map((sql) => ({ sql, params: [] })));
  }

  private conn(): PgPool {
    if (!this.pool) throw new PlankwatchError('PW_E_INTERNAL', 'shore database not open');
    return this.pool;
  }
}
