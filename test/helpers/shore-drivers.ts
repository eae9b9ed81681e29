// The two shore databases the shore tests run against: a SQLite file and a real PostgreSQL server
// (started once for the test file, a new database per test). Each driver makes a fresh location,
// a ShoreStore on it, and an ExportSource reading it.
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { ExportSource } from '../../src/export/source.js';
import { PostgresShoreDriver } from '../../src/shore/postgres.js';
import { SqliteShoreDriver } from '../../src/shore/sqlite.js';
import { ShoreStore } from '../../src/shore/store.js';
import { tmp } from '../sync/helpers.js';
import { startPostgres, type Postgres } from './postgres.js';

export interface ShoreDriver {
  name: string;
  /** A new, empty database: a file path (SQLite) or a URL (PostgreSQL). */
  fresh: () => Promise<string>;
  store: (location: string) => ShoreStore;
  source: (location: string) => Promise<ExportSource>;
}

/** Registers the PostgreSQL server's start and stop for this test file; `prefix` names its databases. */
export function shoreDrivers(prefix: string): ShoreDriver[] {
  let postgres: Postgres | undefined;
  let n = 0;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 120_000);
  afterAll(() => {
    postgres?.stop();
  });
  return [
    {
      name: 'SQLite',
      fresh: async () => path.join(tmp(prefix), 'shore.db'),
      store: (file) => new ShoreStore(new SqliteShoreDriver({ path: file })),
      source: (file) => Promise.resolve(ExportSource.open(file, 'x')),
    },
    {
      name: 'PostgreSQL',
      fresh: async () => {
        const admin = new PostgresShoreDriver({ url: postgres!.url });
        await admin.open();
        const name = `${prefix.replace(/-/g, '_')}_${++n}`;
        await admin.query(`CREATE DATABASE ${name}`, []);
        await admin.close();
        return postgres!.url.replace(/\/postgres$/, `/${name}`);
      },
      store: (url) => new ShoreStore(new PostgresShoreDriver({ url })),
      source: (url) => ExportSource.openPostgres({ url }),
    },
  ];
}
