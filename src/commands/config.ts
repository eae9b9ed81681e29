// `plankwatch config validate FILE` and `plankwatch config defaults`.
import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { renderDefaultYaml } from '../config/default-yaml.js';
import { preflight, preflightActions, preflightError } from '../daemon/preflight.js';
import { isPlankwatchError } from '../errors.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('Check or print the configuration.');
  config
    .command('validate')
    .argument('<file>', 'YAML file to check against the schema')
    .description(
      'Validate a config file (with PLANKWATCH_… variables applied) as `run` would at start: the schema, every file it names, the folders it writes, and the ensemble (each member found, checksummed and loaded). Only the ports are left to the start. Prints every problem with its key path; exit status 2 if any.',
    )
    .action(async (file: string) => {
      try {
        const config = loadConfig({ file, env: process.env });
        const problems = await preflight(config, { loadModels: true });
        if (problems.length > 0) {
          process.stderr.write(`${preflightError(problems, file).message}\n${preflightActions(problems).join('\n')}\n`);
          process.exitCode = 2;
          return;
        }
        process.stdout.write(`${file}: valid\n`);
      } catch (err) {
        if (!isPlankwatchError(err)) throw err;
        process.stderr.write(`${err.message}\n${err.action}\n`);
        process.exitCode = 2;
      }
    });
  config
    .command('defaults')
    .description('Print every key with its default and description (the content of config/default.yaml).')
    .action(() => {
      process.stdout.write(renderDefaultYaml());
    });
}
