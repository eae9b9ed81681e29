// `plankwatch run`, `classify`, `counts`, `status`.
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/config.js';
import { Daemon } from '../daemon/daemon.js';
import { preflight, preflightError } from '../daemon/preflight.js';
import { isPlankwatchError, type ErrorCode } from '../errors.js';
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
      // The checks `plankwatch config validate` runs: a config it refuses never starts a part.
      const problems = await preflight(config, { loadModels: false });
      if (problems.length > 0) {
        const err = preflightError(problems, opts.config);
        logger.fatal({ code: err.code, action: err.action, problems }, `could not start: ${err.message}`);
        logger.flush();
        process.exit(startExitCode(err.code));
      }
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
        // A coded error's message names the file and the key at fault: one line, no stack. An
        // uncoded one is a bug, logged with its stack for the developers.
        if (isPlankwatchError(err)) logger.fatal({ code: err.code, action: err.action }, `could not start: ${err.message}`);
        else logger.fatal({ err, code: 'PW_E_INTERNAL' }, `could not start: ${(err as Error).message}`);
        await daemon.stop();
        logger.flush();
        process.exit(startExitCode(isPlankwatchError(err) ? err.code : 'PW_E_INTERNAL'));
      }
    });
}

/**
 * 2: the config, the models or the backend must be fixed first, and the unit does not restart
 * (RestartPreventExitStatus=2); 1: anything else, which a restart may cure (a port still held).
 */
function startExitCode(code: ErrorCode): number {
  return code.startsWith('PW_E_CONFIG') || code === 'PW_E_MODEL_LOAD' || code === 'PW_E_BACKEND' ? 2 : 1;
}
