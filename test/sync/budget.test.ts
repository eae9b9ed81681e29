// The daily cap against a real broker: sending stops once the day's bytes are spent, records stay
// queued; and a shore ingester survives a message that is not a batch.
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { openShip, startSender, tmp, until } from './helpers.js';
import { startShore } from './shore-harness.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('budget and bad input', () => {
  it('pauses at the daily cap with records still queued; the ingester drops a garbage message and carries on', async () => {
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const shoreDir = tmp('cap-shore');
    const shore = await startShore(shoreDir, broker.url);
    cleanups.push(() => shore.stop());
    await until(() => shore.ingester.stats.connected || undefined, 10_000, 'the ingester');
    await new Promise((r) => setTimeout(r, 300));

    const garbage = await mqtt.connectAsync(broker.url);
    await garbage.publishAsync('plankwatch-sync/cam-x/batch', 'not a batch', { qos: 1 });
    await garbage.endAsync();
    await until(() => shore.ingester.stats.badBatches === 1 || undefined, 10_000, 'the bad batch to be dropped');

    const ship = openShip(tmp('cap'), 'cam-cap');
    cleanups.push(() => ship.close());
    ship.write(0, 400);
    const sender = await startSender(ship, broker.url, { dailyBytes: 5000, maxBatchBytes: 1024 });
    cleanups.push(() => sender.stop());
    await until(() => sender.state.pausedForDailyCap || undefined, 20_000, 'the daily cap');
    await new Promise((r) => setTimeout(r, 1000));
    const s = sender.status();
    expect(s.todayBytes).toBeGreaterThanOrEqual(5000);
    expect(s.todayBytes).toBeLessThan(5000 + 1200);
    expect(s.queued.records).toBeGreaterThan(0);
    expect(s.ackedRecords).toBeGreaterThan(0);
    // Counts go before predictions: under the cap the shore already holds the counts.
    // (Read on the shore: the ship deletes rows once the shore's gap report confirms them.)
    const shoreDb = new Database(path.join(shoreDir, 'shore.db'), { readonly: true });
    const kinds = shoreDb.prepare(`SELECT DISTINCT kind FROM shore_records WHERE instrument = 'cam-cap'`).all() as { kind: string }[];
    shoreDb.close();
    expect(kinds.map((r) => r.kind)).toContain('counts');
  }, 60_000);
});
