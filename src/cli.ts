// The plankwatch command line: parses and dispatches; the work lives in the stages.
import { Command } from 'commander';
import { registerConfigCommands } from './commands/config.js';
import { registerExportCommands } from './commands/export.js';
import { registerInspectCommands } from './commands/inspect.js';
import { registerModelsCommands } from './commands/models.js';
import { registerReplayCommands } from './commands/replay.js';
import { registerRunCommands } from './commands/run.js';
import { registerShoreCommands } from './commands/shore.js';
import { registerSyncCommands } from './commands/sync.js';
import { isPlankwatchError, PlankwatchError } from './errors.js';

const program = new Command()
  .name('plankwatch')
  .description('Live plankton image classification for research vessels.')
  .version('0.1.0')
  // `plankwatch --version` is the program's; after a command name, `--version` is that command's
  // own option (`train --version v3`, `average --version avg-v1-v2`).
  .enablePositionalOptions()
  .showHelpAfterError();

registerRunCommands(program);
registerInspectCommands(program);
registerConfigCommands(program);
registerModelsCommands(program);
registerSyncCommands(program);
registerShoreCommands(program);
registerExportCommands(program);
registerReplayCommands(program);

try {
  await registerLearn(program);
  await program.parseAsync(process.argv);
} catch (err) {
  if (isPlankwatchError(err)) {
    process.stderr.write(`${err.message}\n${err.action}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}

/**
 * The training and model commands, loaded from their own module (it pulls in the training code).
 * A failure to load them is a damaged install: reported with PW_E_LEARN_LOAD and exit status 2.
 */
async function registerLearn(root: Command): Promise<void> {
  let learn: typeof import('./learn/cli.js');
  try {
    learn = await import('./learn/cli.js');
  } catch (err) {
    throw new PlankwatchError('PW_E_LEARN_LOAD', `Loading ${new URL('./learn/cli.js', import.meta.url).pathname} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  learn.registerLearnCommands(root);
}
