// Ship to shore through a real Mosquitto, with faults: a slow, high-latency link (fault-injecting
// proxy: 600 ms round trip, 64 kbit/s), the broker killed and restarted, connections reset
// mid-batch, an outage. After each, the shore holds exactly the ship's records, once, and its gap
// report is empty.
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../src/sync/fault-proxy.js';
import type { SyncSender } from '../../src/sync/sender.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { openShip, shipContent, shoreContent, startSender, tmp, until, type Ship } from './helpers.js';
import { startShore, type Shore } from './shore-harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(proxyOptions: { latencyMs: number; bytesPerSecond: number }): Promise<{ broker: Mosquitto; proxy: FaultProxy; shore: Shore; ship: Ship; dir: string }> {
  const dir = tmp('sync');
  const broker = await startMosquitto(await freePort());
  cleanups.push(() => broker.kill());
  const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: broker.port, ...proxyOptions });
  await proxy.start();
  cleanups.push(() => proxy.stop());
  const shore = await startShore(dir, broker.url);
  cleanups.push(() => shore.stop());
  const ship = openShip(dir, 'cam-a');
  cleanups.push(() => ship.close());
  return { broker, proxy, shore, ship, dir };
}

/** Waits until the ship's outbox is empty and the shore confirmed everything, then compares. */
async function expectShoreEqualsShip(ship: Ship, sender: SyncSender, shore: Shore, timeoutMs: number): Promise<void> {
  const lastSeq = shipContent(ship.dbPath).lastSeq;
  await until(() => {
    const s = sender.status();
    return s.queued.records === 0 && s.awaitingShore === 0 && s.shoreThrough === lastSeq;
  }, timeoutMs, `the shore to confirm all ${lastSeq} records`);
  const ours = shipContent(ship.dbPath);
  const theirs = shoreContent(shore.dbPath, ship.instrument);
  expect(theirs.records).toBe(ours.lastSeq);
  expect(theirs.maxSeq).toBe(ours.lastSeq);
  expect(theirs.predictions).toEqual(ours.predictions);
  expect(theirs.counts).toEqual(ours.counts);
  const gaps = await shore.store.gaps(ship.instrument);
  expect(gaps.missing).toEqual([]);
  expect(gaps.contiguousThrough).toBe(ours.lastSeq);
}

describe('sync ashore through a real broker', () => {
  it('drains through a 600 ms round trip at 64 kbit/s, within the byte budget', async () => {
    const { proxy, shore, ship } = await setup({ latencyMs: 300, bytesPerSecond: 8000 });
    ship.write(0, 300);
    const started = Date.now();
    const sender = await startSender(ship, proxy.url, { bytesPerSecond: 6000 });
    cleanups.push(() => sender.stop());
    // More results arrive while the link is busy.
    ship.write(300, 400);
    sender.wake();
    await expectShoreEqualsShip(ship, sender, shore, 90_000);
    const seconds = (Date.now() - started) / 1000;
    const s = sender.status();
    expect(s.bytesPerRoi).toBeGreaterThan(20);
    expect(s.bytesPerRoi).toBeLessThan(400);
    // The budget holds (MQTT bytes; the burst allowance is one batch).
    expect(s.wireBytes / seconds).toBeLessThan(6000 * 1.3);
    console.log(`400 ROIs in ${seconds.toFixed(1)} s; ${s.bytesPerRoi?.toFixed(0)} B/ROI on the wire; compression ${s.compressionRatio?.toFixed(1)}x; ${proxy.stats.bytesUp} B up through the proxy`);
  }, 120_000);

  it('broker killed (SIGKILL) and restarted mid-sync: the ship resends what the broker lost', async () => {
    const { broker, proxy, shore, ship } = await setup({ latencyMs: 50, bytesPerSecond: 8000 });
    ship.write(0, 500);
    const sender = await startSender(ship, proxy.url, { maxBatchBytes: 2048 });
    cleanups.push(() => sender.stop());
    await until(() => sender.status().ackedBatches >= 3 || undefined, 30_000, 'the first acknowledged batches');
    await broker.kill();
    ship.write(500, 600); // results keep coming during the outage
    await new Promise((r) => setTimeout(r, 2000));
    await broker.start();
    await expectShoreEqualsShip(ship, sender, shore, 90_000);
    expect(shore.ingester.stats.records).toBe(shipContent(ship.dbPath).lastSeq);
  }, 150_000);

  it('connections reset mid-batch, then a 20 s outage: nothing lost, nothing doubled', async () => {
    const { proxy, shore, ship } = await setup({ latencyMs: 300, bytesPerSecond: 8000 });
    ship.write(0, 400);
    proxy.resetAfterBytes = 2500; // every connection dies part-way through its second or third batch
    const sender = await startSender(ship, proxy.url, { maxBatchBytes: 1500 });
    cleanups.push(() => sender.stop());
    await until(() => proxy.stats.resets >= 4 || undefined, 60_000, 'four resets mid-batch');
    proxy.resetAfterBytes = 0;
    proxy.outage(20_000);
    ship.write(400, 500);
    await new Promise((r) => setTimeout(r, 20_000));
    expect(proxy.stats.refused).toBeGreaterThan(0);
    await expectShoreEqualsShip(ship, sender, shore, 90_000);
    expect(shore.ingester.stats.records).toBe(shipContent(ship.dbPath).lastSeq);
  }, 180_000);
});
