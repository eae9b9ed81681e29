// `plankwatch shore` as the command builds it from the config: ingester, database and the status
// endpoint (GET /status, /gaps/<instrument>, /metrics).
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log.js';
import { ShoreService } from '../../src/shore/service.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { openShip, shipContent, startSender, tmp, until } from '../sync/helpers.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('shore service', () => {
  it('serves the gap report and counters over HTTP', async () => {
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const dir = tmp('shore-service');
    const config = loadConfig({
      env: {
        PLANKWATCH_SHORE_URL: broker.url,
        PLANKWATCH_SHORE_SQLITE_PATH: path.join(dir, 'shore.db'),
        PLANKWATCH_SHORE_HTTP_PORT: '0',
        PLANKWATCH_SHORE_CLIENT_ID: 'svc-test',
        PLANKWATCH_SHORE_STATUS_INTERVAL_S: '1',
      },
    });
    const service = new ShoreService({ config, logger: silentLogger() });
    await service.start();
    cleanups.push(() => service.stop());

    const ship = openShip(tmp('svc-ship'), 'cam-s');
    cleanups.push(() => ship.close());
    ship.write(0, 40);
    const sender = await startSender(ship, broker.url);
    cleanups.push(() => sender.stop());
    const last = shipContent(ship.dbPath).lastSeq;
    await until(() => sender.status().shoreThrough === last || undefined, 30_000, 'the shore to confirm');

    const status = (await (await fetch(`${service.url}/status`)).json()) as { ingester: { records: number; subscription: string }; instruments: { instrument: string; contiguousThrough: number; missing: unknown[] }[] };
    expect(status.ingester.subscription).toBe('$share/plankwatch-shore/plankwatch-sync/+/batch');
    expect(status.ingester.records).toBe(last);
    expect(status.instruments).toEqual([expect.objectContaining({ instrument: 'cam-s', contiguousThrough: last, missing: [] })]);
    const gaps = (await (await fetch(`${service.url}/gaps/cam-s`)).json()) as { maxSeq: number };
    expect(gaps.maxSeq).toBe(last);
    expect(await (await fetch(`${service.url}/metrics`)).text()).toContain(`plankwatch_shore_records_total ${last}`);
  }, 60_000);
});
