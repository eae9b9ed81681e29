// Through the real daemon: `replay` plays a synthetic tow over UDP into its navigation input and
// copies real NDSB images into its watch folder; the daemon classifies them, tags each with its
// position and water, sweeps the sampled volume, stores concentrations and publishes the profile
// on its embedded broker. A real SQLite file, real sockets, a real MQTT subscriber.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { filenameTimeReader } from '../../src/nav/index.js';
import { replay } from '../../src/nav/replay.js';
import { KNOT_MS } from '../../src/nav/sweeper.js';
import { defaults } from '../../src/config/index.js';
import { daemonDirs, startDaemon, until } from '../helpers/daemon.js';
import { fixtureImages } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { towDepth, towLon, towRecording, TOW_CTD_FIELDS, type TowOptions } from './tow.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

interface Row {
  rel_path: string;
  t_ms: number;
  time_source: string;
  lat: number | null;
  lon: number | null;
  depth_m: number | null;
  temperature_c: number | null;
  salinity: number | null;
  quality: string;
  env_quality: string;
}

describe('navigation through the daemon', () => {
  it('tags every ROI of a replayed tow across the antimeridian and publishes concentrations', async () => {
    const brokerPort = await freePort();
    const udpPort = await freePort();
    const nav = {
      enabled: true,
      udp: { ports: String(udpPort), host: '127.0.0.1' },
      ctd: { fields: TOW_CTD_FIELDS },
      volume: { source: 'swept', fovWidthM: 0.5, depthOfFieldM: 0.2 },
      concentrations: { intervalS: 1, depthBinM: 5 },
      flushMs: 100,
    };
    const dirs = daemonDirs({ publish: { embeddedPort: brokerPort }, store: { countsWindowS: 60 }, nav });
    cleanups.push(() => rmSync(dirs.root, { recursive: true, force: true }));
    const daemon = startDaemon(dirs.config);
    cleanups.push(() => {
      if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    });
    const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    const url = `mqtt://127.0.0.1:${brokerPort}`;
    const messages = new Map<string, string>();
    const windows: { total: number; lat: number | null; lon: number | null; volumeM3: number }[] = [];
    const sub = await mqtt.connectAsync(url, { clientId: 'nav-e2e', reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync());
    sub.on('message', (topic, payload) => {
      messages.set(topic, payload.toString());
      if (topic.endsWith('/concentrations')) windows.push(JSON.parse(payload.toString()));
    });
    await sub.subscribeAsync('plankwatch/test-cam/#', { qos: 1 });

    const tow: TowOptions = { startMs: Date.UTC(2026, 11, 7, 12, 0, 0), seconds: 120, stwKn: 3, startLon: 179.95, lonPerS: 0.001, lat: -17.5, dropout: [30, 33], corrupt: [100] };
    const work = mkdtempSync(path.join(tmpdir(), 'pw-nav-tow-'));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const recording = path.join(work, 'tow.nmea');
    writeFileSync(recording, `${towRecording(tow).join('\r\n')}\r\n`);
    const imagesDir = path.join(work, 'images');
    mkdirSync(imagesDir);
    const images = fixtureImages().slice(0, 16);
    images.forEach((im, i) => writeFileSync(path.join(imagesDir, `${String(i).padStart(2, '0')}-${im.name}`), im.bytes));
    // 120 s of tow at 10x (12 s); 16 images at 2 per second (8 s), stamped 0-75 s into the tow.
    const played = await replay({ navFile: recording, udp: `127.0.0.1:${udpPort}`, speed: 10, imagesDir, into: dirs.incoming, rate: 2 });
    expect(played).toMatchObject({ lines: 360, images: 16 });

    const read = () => {
      const db = new Database(dirs.db, { readonly: true, fileMustExist: true });
      try {
        return db
          .prepare(`SELECT f.rel_path, r.t_ms, r.time_source, r.lat, r.lon, r.depth_m, r.temperature_c, r.salinity, r.quality, r.env_quality
                      FROM roi_positions r JOIN frames f ON f.id = r.frame_id ORDER BY r.t_ms`)
          .all() as Row[];
      } finally {
        db.close();
      }
    };
    const rows = await until(() => {
      const r = read();
      return r.length === 16 && r.every((x) => x.quality === 'interpolated' && x.env_quality === 'interpolated') ? r : undefined;
    }, 120_000, '16 ROIs tagged, all interpolated');

    const fromName = filenameTimeReader(defaults().nav.time.filenamePattern);
    for (const r of rows) {
      expect(r.time_source).toBe('filename');
      expect(r.t_ms).toBe(fromName(path.basename(r.rel_path)));
      const s = (r.t_ms - tow.startMs) / 1000;
      // Linear in time between the fixes (the dropout is shorter than nav.maxGapS), the short way round 180.
      const expected = towLon(tow, s);
      expect(Math.abs(((r.lon! - expected + 540) % 360) - 180)).toBeLessThan(1e-5);
      expect(r.lat).toBeCloseTo(-17.5, 6);
      // The triangle wave turns at whole seconds, so interpolating between seconds is exact.
      const d0 = towDepth(Math.floor(s));
      const d1 = towDepth(Math.floor(s) + 1);
      expect(r.depth_m).toBeCloseTo(d0 + (d1 - d0) * (s - Math.floor(s)), 6);
      expect(r.salinity).toBe(35);
    }
    expect(rows.some((r) => r.lon! > 179) && rows.some((r) => r.lon! < -179)).toBe(true);

    // Concentrations: count / swept volume (0.5 m x 0.2 m x 3 kn), per minute window.
    const conc = await until(() => {
      const db = new Database(dirs.db, { readonly: true, fileMustExist: true });
      try {
        const c = db.prepare(`SELECT window_start, count, volume_m3, per_m3 FROM concentrations WHERE bin_m = 0 AND label = '*' ORDER BY window_start`).all() as { window_start: number; count: number; volume_m3: number; per_m3: number }[];
        return c.reduce((a, x) => a + x.count, 0) === 16 ? c : undefined;
      } finally {
        db.close();
      }
    }, 30_000, 'concentrations of all 16 ROIs');
    const rate = 0.5 * 0.2 * 3 * KNOT_MS; // m³ per second of tow
    for (const c of conc) {
      expect(c.per_m3).toBe(c.count / c.volume_m3);
      // Seconds swept in the window: every second whose fix pair lies inside it, but the dropout's.
      expect(c.volume_m3 / rate).toBeGreaterThan(20);
      expect(c.volume_m3 / rate).toBeLessThanOrEqual(60 + 1e-9);
    }

    const profile = JSON.parse(await until(() => messages.get('plankwatch/test-cam/profile'), 30_000, 'the retained profile')) as { bins: { depthMinM: number; total: number }[] };
    expect(profile.bins.length).toBeGreaterThan(1);
    await until(() => windows.reduce((a, w) => Math.max(a, w.total), 0) > 0 || undefined, 30_000, 'a concentrations message');
    expect(windows.every((w) => w.lat === null || Math.abs(w.lat + 17.5) < 1e-6)).toBe(true);
    expect(messages.has('plankwatch/test-cam/position')).toBe(true);

    const metrics = await (await fetch(`${String(ready.http)}/metrics`)).text();
    expect(metrics).toContain(`plankwatch_nav_bad_sentences_total{source="udp:${udpPort}"} 1`);
    expect(daemon.logs.some((l) => l.code === 'PW_E_NAV_SENTENCE')).toBe(true);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 240_000);
});
