// Statements prepared on first use, for a database opened read-only. Commands such as `counts`
// and `status` read a database without migrating it, so it may be at an older schema: a write
// statement naming a column added since (frames.area_um2, …) would fail to prepare, though such
// a command never runs it. Only the statements a command uses are prepared, when it uses them.
import type { SqliteDatabase } from './db.js';

type Statement = ReturnType<SqliteDatabase['prepare']>;

/** A stand-in for `db` whose prepare() defers the real one to the statement's first use. */
export function deferredPreparer(db: SqliteDatabase): SqliteDatabase {
  const prepare = (sql: string): Statement => {
    let real: Statement | undefined;
    return new Proxy({} as Statement, {
      get(_target, prop) {
        real ??= db.prepare(sql);
        const value = Reflect.get(real, prop, real) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(real) : value;
      },
    });
  };
  return { prepare } as unknown as SqliteDatabase;
}
