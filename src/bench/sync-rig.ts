// What both sync benchmarks stand on: a real Mosquitto on a free port, the fault-injecting proxy
// in front of it (the satellite link), a shore ingester writing a SQLite shore database, and the
// ship's store, whose classified ROIs go into the outbox. All in a temporary folder, closed (in the
// reverse order of their start) and removed by close().
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '../log.js';
import { ShoreIngester } from '../shore/ingester.js';
import { SqliteShoreDriver } from '../shore/sqlite.js';
import { ShoreStore } from '../shore/store.js';
import { Store } from '../store/store.js';
import { FaultProxy } from '../sync/fault-proxy.js';
import { enqueueClassified } from '../sync/outbox.js';
import { freePort, mosquittoBinary, waitForPort } from './ports.js';

export interface SyncRig {
  dir: string;
  /** The broker's port (the shore side connects to it directly). */
  port: number;
  /** The ship's end of the link. */
  proxy: FaultProxy;
  /** The ship's store; what it records classified goes into the sync outbox. */
  store: Store;
  /** The instrument and window the outbox records carry. */
  ctx: { instrument: string; windowMs: number };
  logger: Logger;
  /** Close `fn` with the rig, before what was started earlier. */
  defer(fn: () => Promise<void> | void): void;
  close(): Promise<void>;
}

/** The link: one-way latency and throughput each way. */
export interface RigLink {
  latencyMs: number;
  bytesPerSecond: number;
}

/** Start the rig in a folder named after `name`; `{ skipped }` when mosquitto is not installed. */
export async function openSyncRig(name: string, link: RigLink): Promise<SyncRig | { skipped: string }> {
  const binary = mosquittoBinary();
  if (!binary) return { skipped: 'mosquitto is not installed (apt-get install mosquitto)' };
  const dir = mkdtempSync(path.join(tmpdir(), `pw-bench-${name}-`));
  const port = await freePort();
  writeFileSync(path.join(dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\n`);
  const broker = spawn(binary, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  const logger = silentLogger();
  const closers: (() => Promise<void> | void)[] = [() => void broker.kill('SIGKILL'), () => rmSync(dir, { recursive: true, force: true })];
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0)) {
      try {
        await c();
      } catch {
        // best effort
      }
    }
  };
  try {
    await waitForPort(port, 10_000);
    const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: port, latencyMs: link.latencyMs, bytesPerSecond: link.bytesPerSecond });
    await proxy.start();
    closers.unshift(() => proxy.stop());
    const shoreStore = new ShoreStore(new SqliteShoreDriver({ path: path.join(dir, 'shore.db') }));
    await shoreStore.open();
    const ingester = new ShoreIngester({
      store: shoreStore,
      link: { url: `mqtt://127.0.0.1:${port}`, clientId: 'bench-shore' },
      group: 'bench',
      topicPrefix: 'plankwatch-sync',
      statusIntervalMs: 1000,
      logger,
    });
    await ingester.start();
    closers.unshift(async () => {
      await ingester.stop();
      await shoreStore.close();
    });
    const ctx = { instrument: 'bench-1', windowMs: 60_000 };
    const store = new Store({ path: path.join(dir, 'ship.db'), countsWindowMs: 60_000, logger, onRecordClassified: (outbox, stored) => enqueueClassified(outbox, ctx, stored) });
    store.open();
    closers.unshift(() => store.close());
    return { dir, port, proxy, store, ctx, logger, defer: (fn) => void closers.unshift(fn), close };
  } catch (err) {
    await close();
    throw err;
  }
}
