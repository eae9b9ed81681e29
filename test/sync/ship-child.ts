// A ship in a child process, for kill -9 tests: stores frames [from, to) in small batches while
// its sender syncs them to the broker, printing one JSON line per event. Run with tsx.
import { SyncSender } from '../../src/sync/sender.js';
import { openShip, senderOptions } from './helpers.js';

const [dir, url, instrument, fromArg, toArg] = process.argv.slice(2);
const ship = openShip(dir!, instrument!);
const sender = new SyncSender(senderOptions(ship, url!, { maxBatchBytes: 1500, maxInFlight: 2 }));
await sender.start();
process.stdout.write(`${JSON.stringify({ event: 'started' })}\n`);
const from = Number(fromArg);
const to = Number(toArg);
for (let i = from; i < to; i += 10) {
  ship.write(i, Math.min(to, i + 10), 10);
  sender.wake();
  await new Promise((r) => setTimeout(r, 20));
}
process.stdout.write(`${JSON.stringify({ event: 'written', to })}\n`);
setInterval(() => {
  const s = sender.status();
  process.stdout.write(`${JSON.stringify({ event: 'status', acked: s.ackedRecords, queued: s.queued.records, shoreThrough: s.shoreThrough })}\n`);
}, 250);
process.on('SIGTERM', () => {
  void sender.stop().then(() => {
    ship.close();
    process.exit(0);
  });
});
