// Child process for the crash test: writes batches of classified frames until killed.
// Prints "batch N" after each committed batch.
import { createHash } from 'node:crypto';
import { silentLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { classified } from './helpers.js';

const [dbPath] = process.argv.slice(2);
if (!dbPath) throw new Error('usage: crash-writer DB');
const store = new Store({ path: dbPath, countsWindowMs: 1000, logger: silentLogger() });
store.open();
let n = 0;
for (let batch = 0; ; batch++) {
  const items = Array.from({ length: 50 }, () => {
    const id = n++;
    const sha256 = createHash('sha256').update(`frame ${id}`).digest('hex');
    const file = { path: `/in/${id}.jpg`, relPath: `${id}.jpg`, sha256, bytes: 100 + id, arrivedAt: 1000 + id, mtimeMs: id };
    return classified(file, id % 3 === 0 ? 'copepod' : 'diatom', 1_700_000_000_000 + id * 7);
  });
  store.recordClassified(items);
  process.stdout.write(`batch ${batch}\n`);
}
