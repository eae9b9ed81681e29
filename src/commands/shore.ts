// `plankwatch shore`: the shore ingester, and `shore gaps` for a one-off gap report.
import type { Command } from 'commander';
import { readSecret } from '../config/secret.js';
import { createLogger } from '../log.js';
import { ShoreService } from '../shore/service.js';
import { SqliteShoreDriver } from '../shore/sqlite.js';
import { PostgresShoreDriver } from '../shore/postgres.js';
import { ShoreStore } from '../shore/store.js';
import { configFrom } from './run.js';

export function registerShoreCommands(program: Command): void {
  const shore = program
    .command('shore')
    .description('Run a shore ingester: joins the shared subscription on the shore broker and stores every ship\'s records (SQLite or PostgreSQL). Stops on SIGTERM/SIGINT.')
    .option('-c, --config <file>', 'YAML config file (section shore)')
    .action(async (opts: { config?: string }) => {
      const config = configFrom(opts.config);
      const logger = createLogger({ level: config.log.level });
      const service = new ShoreService({ config, logger });
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) process.exit(1);
        stopping = true;
        logger.info({ signal }, 'stopping the shore ingester');
        void service.stop().then((ok) => {
          logger.flush();
          process.exit(ok ? 0 : 1);
        });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      try {
        await service.start();
      } catch (err) {
        logger.fatal({ err }, `could not start: ${(err as Error).message}`);
        await service.stop();
        throw err;
      }
    });
  shore
    .command('gaps')
    .description('Print the gap report of every instrument in the shore database and exit (exit code 3 if anything is missing).')
    .option('-c, --config <file>', 'YAML config file (section shore)')
    .option('--json', 'one JSON object per instrument per line')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const c = configFrom(opts.config).shore;
      const driver =
        c.database === 'postgres'
          ? new PostgresShoreDriver({ url: c.postgresUrl, ...(c.postgresPasswordFile ? { password: readSecret(c.postgresPasswordFile, 'shore.postgresPasswordFile') } : {}) })
          : new SqliteShoreDriver({ path: c.sqlitePath });
      const store = new ShoreStore(driver);
      await store.open();
      let missing = 0;
      try {
        for (const inst of await store.instruments()) {
          const g = await store.gaps(inst, 10_000);
          missing += g.missing.length;
          if (opts.json) process.stdout.write(`${JSON.stringify(g)}\n`);
          else {
            const ranges = g.missing.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ');
            process.stdout.write(`${inst}: ${g.records} records, highest seq ${g.maxSeq}, complete through ${g.contiguousThrough}; missing: ${ranges || 'none'}\n`);
          }
        }
      } finally {
        await store.close();
      }
      if (missing > 0) process.exitCode = 3;
    });
}
