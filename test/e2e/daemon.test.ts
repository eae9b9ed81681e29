// End to end: the daemon as a child process, real NDSB images dropped into its watch folder,
// a real broker (embedded aedes, then Mosquitto), a real SQLite file, a real MQTT subscriber.
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { daemonDirs, startDaemon, until, type DaemonProcess } from '../helpers/daemon.js';
import { badFiles, fixtureImages, type FixtureImage } from '../helpers/images.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';

const GOOD = 60;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function readDb(file: string) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      frames: db.prepare('SELECT sha256 FROM frames').all() as { sha256: string }[],
      perFrame: db
        .prepare('SELECT f.sha256 AS sha256, COUNT(p.id) AS n FROM frames f LEFT JOIN predictions p ON p.frame_id = f.id GROUP BY f.id')
        .all() as { sha256: string; n: number }[],
      predictions: (db.prepare('SELECT COUNT(*) AS n FROM predictions').get() as { n: number }).n,
      rejects: db.prepare('SELECT rel_path, code, detail, quarantined_path FROM rejects ORDER BY rel_path').all() as {
        rel_path: string;
        code: string;
        detail: string;
        quarantined_path: string | null;
      }[],
      duplicates: db.prepare("SELECT rel_path, sha256 FROM frame_sources WHERE role = 'duplicate'").all() as { rel_path: string; sha256: string }[],
      counts: db.prepare('SELECT label, SUM(count) AS n FROM counts GROUP BY label').all() as { label: string; n: number }[],
    };
  } finally {
    db.close();
  }
}

async function dropImages(incoming: string, images: FixtureImage[]): Promise<void> {
  mkdirSync(path.join(incoming, 'cast-01', 'deep'), { recursive: true });
  for (const [i, image] of images.entries()) {
    if (i % 2 === 0) {
      // The camera's usual way: write under a temporary name, then rename.
      const tmp = path.join(incoming, `.${image.name}.part`);
      writeFileSync(tmp, image.bytes);
      renameSync(tmp, path.join(incoming, `${i}-${image.name}`));
    } else {
      writeFileSync(path.join(incoming, 'cast-01', i % 3 === 0 ? 'deep' : '', `${i}-${image.name}`), image.bytes);
    }
  }
}

async function endToEnd(broker: 'embedded' | 'mosquitto'): Promise<void> {
  const port = await freePort();
  let mosquitto: Mosquitto | undefined;
  if (broker === 'mosquitto') {
    mosquitto = await startMosquitto(port);
    cleanups.push(() => mosquitto!.stop());
  }
  const url = `mqtt://127.0.0.1:${port}`;
  const dirs = daemonDirs({ publish: broker === 'embedded' ? { embeddedPort: port } : { mqttUrl: url } });
  const daemon: DaemonProcess = startDaemon(dirs.config);
  cleanups.push(async () => {
    if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
  });
  const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
  expect(ready.backend).toBeTypeOf('string');

  const messages = new Map<string, string>();
  const countsSeen: { total: number; counts: Record<string, number>; seq: number }[] = [];
  const subscriber = await mqtt.connectAsync(url, { clientId: `e2e-sub-${broker}`, reconnectPeriod: 0 });
  cleanups.push(() => subscriber.endAsync());
  subscriber.on('message', (topic, payload) => {
    messages.set(topic, payload.toString());
    if (topic.endsWith('/counts')) countsSeen.push(JSON.parse(payload.toString()));
  });
  await subscriber.subscribeAsync('plankwatch/test-cam/#', { qos: 1 });
  await until(() => messages.get('plankwatch/test-cam/availability') === 'online', 10_000, 'availability online');
  const model = JSON.parse(await until(() => messages.get('plankwatch/test-cam/model'), 10_000, 'model message'));
  expect(model.members.length).toBeGreaterThan(0);

  const images = fixtureImages().slice(0, GOOD);
  const bad = await badFiles(images[0]!.bytes);
  await dropImages(dirs.incoming, images);
  mkdirSync(path.join(dirs.incoming, 'dup'), { recursive: true });
  writeFileSync(path.join(dirs.incoming, 'dup', 'same-bytes-new-name.jpg'), images[3]!.bytes);
  for (const b of bad) writeFileSync(path.join(dirs.incoming, b.name), b.bytes);

  const state = await until(
    () => {
      const s = readDb(dirs.db);
      return s.predictions >= GOOD && s.rejects.length >= bad.length && s.duplicates.length >= 1 ? s : undefined;
    },
    120_000,
    `${GOOD} predictions, ${bad.length} rejects and 1 duplicate in the database`,
  );

  // Every good image: exactly one frame and exactly one prediction.
  expect(state.frames.length).toBe(GOOD);
  expect(new Set(state.frames.map((f) => f.sha256))).toEqual(new Set(images.map((i) => i.sha256)));
  expect(state.perFrame.every((r) => r.n === 1)).toBe(true);
  expect(state.predictions).toBe(GOOD);
  // The same bytes under a second name are recorded as a duplicate, not classified again. Both
  // names arrive together, so either may be the one classified; the other is the duplicate.
  expect(state.duplicates).toHaveLength(1);
  expect(state.duplicates[0]!.sha256).toBe(images[3]!.sha256);
  expect(['dup/same-bytes-new-name.jpg', '3-' + images[3]!.name, 'cast-01/3-' + images[3]!.name, 'cast-01/deep/3-' + images[3]!.name]).toContain(state.duplicates[0]!.rel_path);
  // Each bad file quarantined with its reason.
  expect(state.rejects.map((r) => [r.rel_path, r.code])).toEqual(bad.map((b) => [b.name, b.code]).sort((a, b) => a[0]!.localeCompare(b[0]!)));
  for (const r of state.rejects) expect(r.detail.length).toBeGreaterThan(5);
  await until(() => readdirSync(dirs.quarantine).length === bad.length || undefined, 10_000, 'files in quarantine');
  expect(readdirSync(dirs.quarantine).sort()).toEqual(bad.map((b) => b.name).sort());
  // Processed files were archived (the default) and the watch folder holds no images any more.
  await until(() => readdirSync(dirs.incoming, { recursive: true }).filter((n) => String(n).endsWith('.jpg')).length === 0 || undefined, 10_000, 'incoming emptied');

  // The counts message a subscriber receives totals the good images and equals the database.
  const last = await until(() => countsSeen.findLast((c) => c.total === GOOD), 30_000, `a counts message with total ${GOOD}`);
  const dbCounts = Object.fromEntries(state.counts.map((c) => [c.label, c.n]));
  expect(last.counts).toEqual(dbCounts);
  expect(Object.values(last.counts).reduce((a, b) => a + b, 0)).toBe(GOOD);
  const seqs = countsSeen.map((c) => c.seq);
  expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);

  // /metrics agrees with the database.
  const metrics = await (await fetch(`${String(ready.http)}/metrics`)).text();
  expect(metrics).toContain(`plankwatch_frames_classified_total ${GOOD}`);
  expect(metrics).toContain('plankwatch_duplicates_total 1');
  expect(metrics).toContain('plankwatch_quarantined_total{reason="PW_E_IMAGE_CORRUPT"} 2');
  expect(metrics).toMatch(/plankwatch_backend_info\{backend="onnx"\} 1/);
  const health = await fetch(`${String(ready.http)}/health`);
  expect(health.status).toBe(200);

  // Quarantined files are logged with their stable code.
  for (const b of bad) expect(daemon.logs.some((l) => l.code === b.code)).toBe(true);

  // SIGTERM: clean exit, availability goes offline.
  daemon.child.kill('SIGTERM');
  expect(await daemon.exited).toBe(0);
  await until(() => messages.get('plankwatch/test-cam/availability') === 'offline', 10_000, 'availability offline');
}

describe('daemon end to end', () => {
  it('classifies real images once, quarantines bad files, and publishes counts equal to the database (embedded broker)', async () => {
    await endToEnd('embedded');
  }, 240_000);

  it.skipIf(!mosquittoPath() && !process.env.CI)('does the same against a real Mosquitto broker', async () => {
    await endToEnd('mosquitto');
  }, 240_000);

  it.skipIf(!mosquittoPath() && !process.env.CI)('keeps classifying while the broker is down and publishes the stored counts when it returns', async () => {
    const port = await freePort();
    const mosquitto = await startMosquitto(port);
    cleanups.push(() => mosquitto.stop());
    const dirs = daemonDirs({ publish: { mqttUrl: mosquitto.url } });
    const daemon = startDaemon(dirs.config);
    cleanups.push(async () => {
      if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    });
    await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    await daemon.waitForLog((l) => l.msg === 'MQTT connected', 10_000);

    await mosquitto.kill();
    const images = fixtureImages().slice(0, 30);
    await dropImages(dirs.incoming, images);
    // Classification and storage go on without the broker.
    await until(() => readDb(dirs.db).predictions >= images.length || undefined, 120_000, 'results stored while the broker is down');
    expect(daemon.logs.some((l) => l.code === 'PW_E_MQTT')).toBe(true);

    await mosquitto.start();
    const counts: { total: number }[] = [];
    const subscriber = await mqtt.connectAsync(mosquitto.url, { clientId: 'e2e-outage-sub', reconnectPeriod: 0 });
    cleanups.push(() => subscriber.endAsync());
    subscriber.on('message', (topic, payload) => {
      if (topic.endsWith('/counts')) counts.push(JSON.parse(payload.toString()));
    });
    await subscriber.subscribeAsync('plankwatch/test-cam/counts', { qos: 1 });
    const seen = await until(() => counts.find((c) => c.total === images.length), 60_000, 'counts republished after the broker returned');
    expect(seen.total).toBe(images.length);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 240_000);
});
