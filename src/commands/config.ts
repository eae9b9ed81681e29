// `plankwatch config validate FILE` and `plankwatch config defaults`.
import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { renderDefaultYaml } from '../config/default-yaml.js';
import { isPlankwatchError } from '../errors.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('Check or print the configuration.');
  config
    .command('validate')
    .argument('<file>', 'YAML file to check against the schema')
    .description('Validate a config file (with PLANKWATCH_… variables applied); prints every problem with its key path.')
    .action((file: string) => {
      try {
        loadConfig({ file, env: process.env });
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
