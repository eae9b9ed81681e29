// End to end: two instruments sync to one shore broker; two ingesters share the subscription and
// split the batches. The shore holds each ship's records exactly, and both gap reports are empty.
import { afterEach, describe, expect, it } from 'vitest';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { openShip, shipContent, shoreContent, startSender, tmp, until } from '../sync/helpers.js';
import { startShore } from '../sync/shore-harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('two instruments, two ingesters, one shore broker', () => {
  it('each ship\'s records arrive once, split between the ingesters', async () => {
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const shoreDir = tmp('shore');
    const a = await startShore(shoreDir, broker.url, 'ingester-a');
    cleanups.push(() => a.stop());
    const b = await startShore(shoreDir, broker.url, 'ingester-b');
    cleanups.push(() => b.stop());
    await until(() => (a.ingester.stats.connected && b.ingester.stats.connected) || undefined, 10_000, 'both ingesters connected');
    await new Promise((r) => setTimeout(r, 300)); // subscriptions settle

    const ships = ['vessel-1', 'vessel-2'].map((id) => openShip(tmp(id), id));
    for (const s of ships) cleanups.push(() => s.close());
    const senders = await Promise.all(ships.map((s) => startSender(s, broker.url, { maxBatchBytes: 1024, maxInFlight: 2 })));
    for (const s of senders) cleanups.push(() => s.stop());
    for (let i = 0; i < 300; i += 50) {
      for (const s of ships) s.write(i, i + 50);
      for (const s of senders) s.wake();
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [i, ship] of ships.entries()) {
      const lastSeq = shipContent(ship.dbPath).lastSeq;
      await until(() => senders[i]!.status().shoreThrough === lastSeq || undefined, 60_000, `${ship.instrument} confirmed by the shore`);
      const ours = shipContent(ship.dbPath);
      const theirs = shoreContent(a.dbPath, ship.instrument);
      expect(theirs.predictions).toEqual(ours.predictions);
      expect(theirs.counts).toEqual(ours.counts);
      expect(theirs.records).toBe(ours.lastSeq);
      expect((await a.store.gaps(ship.instrument)).missing).toEqual([]);
    }
    // The shared subscription split the load.
    expect(a.ingester.stats.batches).toBeGreaterThan(0);
    expect(b.ingester.stats.batches).toBeGreaterThan(0);
    const total = a.ingester.stats.records + b.ingester.stats.records;
    expect(total).toBe(ships.reduce((n, s) => n + shipContent(s.dbPath).lastSeq, 0));
    console.log(`ingester-a ${a.ingester.stats.batches} batches, ingester-b ${b.ingester.stats.batches} batches`);
  }, 120_000);
});
