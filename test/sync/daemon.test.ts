// The real daemon (child process, real models and images) with sync on, to a real Mosquitto and a
// shore ingester: every classified image arrives ashore once; `plankwatch sync status` agrees.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { daemonDirs, REPO_ROOT, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { manyImages } from '../helpers/images.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { FaultProxy } from '../../src/sync/fault-proxy.js';
import { shipContent, shoreContent, tmp, until } from './helpers.js';
import { startShore } from './shore-harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
const running: DaemonProcess[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) if (d.child.exitCode === null) d.child.kill('SIGKILL');
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('daemon with sync on', () => {
  it('sends every classified image ashore, and sync status reports the queue drained', async () => {
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const shore = await startShore(tmp('daemon-shore'), broker.url);
    cleanups.push(() => shore.stop());
    // An untrained tiny ensemble: this test is about the results' journey, not their accuracy.
    const models = await tempModelsDir();
    await saveTinyMember(models, { name: 'tiny', version: 'v1', classes: ['copepod', 'detritus', 'diatom'], size: 32, seed: 3 });
    const ensemble = await writeEnsemble(models, { version: 'sync-test', voting: 'soft', members: [{ name: 'tiny', version: 'v1' }] });
    const dirs = daemonDirs({
      classify: { ensemble, modelsDir: models, workers: 1 },
      publish: { embeddedPort: await freePort() },
      sync: { enabled: true, url: broker.url, countsHoldS: 0, resendAfterS: 5 },
    });
    const daemon = startDaemon(dirs.config);
    running.push(daemon);
    await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    const images = await manyImages(24);
    for (const [i, image] of images.entries()) writeFileSync(path.join(dirs.incoming, `${String(i).padStart(3, '0')}.jpg`), image.bytes);

    await until(() => shoreContent(shore.dbPath, 'test-cam').predictions.length >= 24 || undefined, 120_000, '24 predictions ashore');
    await until(() => {
      const ship = shipContent(dirs.db);
      const s = shoreContent(shore.dbPath, 'test-cam');
      return (ship.lastSeq > 0 && s.records === ship.lastSeq && s.counts.join() === ship.counts.join()) || undefined;
    }, 60_000, 'the shore to hold every record');
    const ship = shipContent(dirs.db);
    expect(shoreContent(shore.dbPath, 'test-cam').predictions).toEqual(ship.predictions);
    expect((await shore.store.gaps('test-cam')).missing).toEqual([]);

    // A label confirmed on the review page travels ashore too, with who gave it.
    const ready = daemon.logs.find((l) => l.msg === 'plankwatch ready')!;
    const labelled = images[5]!;
    const response = await fetch(`${String(ready.http)}/api/labels`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sha256: labelled.sha256, action: 'correct', label: 'diatom', user: 'j.smith' }),
    });
    expect(response.status).toBe(200);
    const shoreLabel = await until(() => {
      const db = new Database(shore.dbPath, { readonly: true });
      try {
        return db.prepare(`SELECT state, label, labelled_by FROM shore_labels WHERE instrument = 'test-cam' AND sha256 = ?`).get(labelled.sha256) as
          | { state: string; label: string; labelled_by: string }
          | undefined;
      } finally {
        db.close();
      }
    }, 60_000, 'the validated label ashore');
    expect(shoreLabel).toEqual({ state: 'validated', label: 'diatom', labelled_by: 'j.smith' });

    const status = await until(() => {
      const out = JSON.parse(execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin/plankwatch.js'), 'sync', 'status', '--json', '--config', dirs.config], { encoding: 'utf8' })) as {
        queued: { records: number };
        shoreThrough: number;
        lastSeq: number;
        bytesPerRoi: number;
      };
      return (out.queued.records === 0 && out.shoreThrough === out.lastSeq && out) || undefined;
    }, 60_000, 'sync status to show the queue drained and confirmed');
    expect(status.lastSeq).toBe(shipContent(dirs.db).lastSeq);
    expect(status.bytesPerRoi).toBeGreaterThan(0);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 240_000);

  it('daemon killed with kill -9 mid-sync over a 16 kbit/s, 600 ms link, restarted: the shore ends with every record once', async () => {
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: broker.port, latencyMs: 300, bytesPerSecond: 2000 });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const shore = await startShore(tmp('daemon-shore'), broker.url);
    cleanups.push(() => shore.stop());
    const models = await tempModelsDir();
    await saveTinyMember(models, { name: 'tiny', version: 'v1', classes: ['copepod', 'detritus', 'diatom'], size: 32, seed: 3 });
    const ensemble = await writeEnsemble(models, { version: 'sync-test', voting: 'soft', members: [{ name: 'tiny', version: 'v1' }] });
    const dirs = daemonDirs({
      classify: { ensemble, modelsDir: models, workers: 1 },
      publish: { embeddedPort: await freePort() },
      sync: { enabled: true, url: proxy.url, countsHoldS: 0, resendAfterS: 5, maxBatchBytes: 1024 },
    });
    const images = await manyImages(120);
    const first = startDaemon(dirs.config);
    running.push(first);
    await first.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    for (const [i, image] of images.entries()) writeFileSync(path.join(dirs.incoming, `${String(i).padStart(3, '0')}.jpg`), image.bytes);
    await until(() => shoreContent(shore.dbPath, 'test-cam').predictions.length >= 20 || undefined, 120_000, 'the first records ashore');
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    expect(shoreContent(shore.dbPath, 'test-cam').predictions.length).toBeLessThan(120);

    const second = startDaemon(dirs.config);
    running.push(second);
    await second.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    await until(() => {
      const ship = shipContent(dirs.db);
      const s = shoreContent(shore.dbPath, 'test-cam');
      return (ship.predictions.length === 120 && s.records === ship.lastSeq && s.counts.join() === ship.counts.join()) || undefined;
    }, 150_000, 'all 120 results ashore');
    const ship = shipContent(dirs.db);
    expect(shoreContent(shore.dbPath, 'test-cam').predictions).toEqual(ship.predictions);
    expect((await shore.store.gaps('test-cam')).missing).toEqual([]);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 300_000);
});
