// `plankwatch run`, `classify`, `counts`, `status`.
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/config.js';
import { Daemon } from '../daemon/daemon.js';
import { isPlankwatchError } from '../errors.js';
import { createLogger } from '../log.js';

export function configFrom(file: string | undefined): Config {
  return loadConfig({ ...(file ? { file } : {}), env: process.env });
}

export function registerRunCommands(program: Command): void {
  program
    .command('run')
    .description('Run the daemon: watch the folder, classify, store, publish. Stops cleanly on SIGTERM/SIGINT.')
    .option('-c, --config <file>', 'YAML config file overlaid on the defaults')
    .action(async (opts: { config?: string }) => {
      const config = configFrom(opts.config);
      const logger = createLogger({ level: config.log.level });
      const daemon = new Daemon({ config, logger, env: process.env });
      let stopping: Promise<void> | undefined;
      const stop = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(1);
        }
        logger.info({ signal }, 'stopping: no new files; finishing the batch in flight');
        stopping = daemon.stop().then((ok) => {
          logger.info({ ok }, 'stopped');
          logger.flush();
          process.exit(ok ? 0 : 1);
        });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('unhandledRejection', (reason) => {
        logger.error({ err: reason, code: 'PW_E_INTERNAL' }, 'unhandled promise rejection (the daemon keeps running)');
      });
      try {
        await daemon.start();
      } catch (err) {
        const code = isPlankwatchError(err) ? err.code : 'PW_E_INTERNAL';
        const action = isPlankwatchError(err) ? err.action : undefined;
        logger.fatal({ err, code, action }, `could not start: ${(err as Error).message}`);
        await daemon.stop();
        logger.flush();
        process.exit(isPlankwatchError(err) && err.code.startsWith('PW_E_CONFIG') ? 2 : 1);
      }
    });
}
