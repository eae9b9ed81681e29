// `node dist/learn/standalone.js train|evaluate …`: the learn commands without the rest of the
// CLI (for training hosts that only need these two).
import { Command } from 'commander';
import { registerLearnCommands } from './cli.js';

const program = new Command('plankwatch');
registerLearnCommands(program);
await program.parseAsync(process.argv);
