// Sync ashore of the navigation stage's series, through a real Mosquitto into a real shore SQLite
// database: each ROI's tags (position, depth, water, quality; a re-tag replaces the first), the
// track and CTD series decimated to one point per interval, and the sampled volume, whose sum
// ashore equals the ship's. Then an export from the shore database carries the positions and the
// volumes. Also: live records wait within the latency budget and go out together.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { exportDwc } from '../../src/export/dwc.js';
import { ExportSource } from '../../src/export/source.js';
import { validateArchive } from '../../src/export/validate.js';
import { Outbox } from '../../src/sync/outbox.js';
import { queueNavRecords } from '../../src/sync/nav-records.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { unzip } from '../export/unzip.js';
import { openShip, sha, shipContent, startSender, tmp, until, type Ship } from './helpers.js';
import { startShore } from './shore-harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const T0 = Date.UTC(2026, 5, 3, 12, 0, 0);

/** A longitude east of 179.995° by `x` degrees, across 180° into the west. */
function lonAt(x: number): number {
  const lon = 179.995 + x;
  return lon > 180 ? lon - 360 : lon;
}

/** Tags frames [0, n) as the nav stage would, writes 61 s of 1 Hz fixes and CTD, and volumes. */
function navigate(ship: Ship, n: number): void {
  const db = ship.store.database;
  const ids = db.prepare('SELECT id, sha256 FROM frames ORDER BY id').all() as { id: number; sha256: string }[];
  const tag = db.prepare(`INSERT INTO roi_positions (frame_id, t_ms, time_source, lat, lon, depth_m, temperature_c, salinity, quality, gap_s, env_quality, env_gap_s, tagged_at)
    VALUES (?, ?, 'arrival', ?, ?, ?, 24.25, 36.125, ?, 1, 'interpolated', 1, ?)`);
  ids.slice(0, n).forEach((f, i) => tag.run(f.id, T0 + i * 500, 25 + i * 0.0001, lonAt(i * 0.0005), 5 + i * 0.25, i === 0 ? 'held' : 'interpolated', T0 + 1000 + i));
  const fix = db.prepare(`INSERT INTO nav_fixes (t_ms, source, lat, lon, sog_kn, received_at) VALUES (?, 'gps', ?, ?, 4.5, ?)`);
  const env = db.prepare(`INSERT INTO env_samples (t_ms, source, depth_m, temperature_c, salinity, received_at) VALUES (?, 'ctd', ?, 24.25, 36.125, ?)`);
  for (let s = 0; s <= 60; s++) {
    fix.run(T0 + s * 1000, 25 + s * 0.0001, lonAt(s * 0.001), T0 + s * 1000);
    env.run(T0 + s * 1000, 5 + s * 0.5, T0 + s * 1000);
  }
  const vol = db.prepare(`INSERT INTO volume_samples (t_ms, volume_m3, source, depth_m) VALUES (?, ?, 'swept', ?)`);
  for (let s = 0; s < 120; s++) vol.run(T0 + s * 500, 0.0125, 5 + s * 0.1);
}

describe('sync ashore of positions, track and volumes', () => {
  it('carries every ROI tag, a decimated track and the volumes to the shore database, and the shore export uses them', async () => {
    const dir = tmp('sync-nav');
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const shore = await startShore(dir, broker.url);
    cleanups.push(() => shore.stop());
    const ship = openShip(dir, 'cam-n');
    cleanups.push(() => ship.close());
    ship.write(0, 40, 10, T0);
    navigate(ship, 40);
    const sender = await startSender(ship, broker.url, { maxDelayMs: 500, nav: { trackIntervalMs: 10_000, pollMs: 100 } });
    cleanups.push(() => sender.stop());
    const confirmed = async (): Promise<void> => {
      const lastSeq = shipContent(ship.dbPath).lastSeq;
      await until(() => {
        const s = sender.status();
        return s.queued.records === 0 && s.shoreThrough === shipContent(ship.dbPath).lastSeq && s.shoreThrough >= lastSeq;
      }, 60_000, 'the shore to confirm every record');
    };
    await confirmed();

    // A re-tag (the held ROI, once the next fix came) replaces the first tag ashore.
    ship.store.database.prepare(`UPDATE roi_positions SET quality = 'interpolated', lat = 25.5, tagged_at = ? WHERE frame_id = (SELECT min(id) FROM frames)`).run(T0 + 90_000);
    await until(() => {
      const db = new Database(shore.dbPath, { readonly: true });
      try {
        return (db.prepare(`SELECT quality FROM shore_positions WHERE sha256 = ?`).get(sha('cam-n', 0)) as { quality: string } | undefined)?.quality === 'interpolated';
      } finally {
        db.close();
      }
    }, 30_000, 'the re-tag ashore');

    const shipDb = new Database(ship.dbPath, { readonly: true });
    const shoreDb = new Database(shore.dbPath, { readonly: true });
    cleanups.push(() => {
      shipDb.close();
      shoreDb.close();
    });
    const ours = shipDb.prepare(`SELECT f.sha256, rp.t_ms, rp.lat, rp.lon, rp.depth_m, rp.temperature_c, rp.salinity, rp.quality, rp.env_quality
      FROM roi_positions rp JOIN frames f ON f.id = rp.frame_id ORDER BY f.sha256`).all() as Record<string, unknown>[];
    const theirs = shoreDb.prepare(`SELECT sha256, t_ms, lat, lon, depth_m, temperature_c, salinity, quality, env_quality
      FROM shore_positions WHERE instrument = 'cam-n' ORDER BY sha256`).all() as Record<string, unknown>[];
    expect(theirs).toHaveLength(40);
    const round = (rows: Record<string, unknown>[]): Record<string, unknown>[] => rows.map((r) => ({ ...r, lat: Math.round((r.lat as number) * 1e6) / 1e6, lon: Math.round((r.lon as number) * 1e6) / 1e6 }));
    expect(round(theirs)).toEqual(round(ours));

    // The track: 61 fixes at 1 Hz, one kept per 10 s (0, 10, … 60 s), across 180°.
    const track = shoreDb.prepare(`SELECT t_ms, lat, lon, sog_kn FROM shore_track WHERE instrument = 'cam-n' ORDER BY t_ms`).all() as { t_ms: number; lon: number }[];
    expect(track.map((p) => (p.t_ms - T0) / 1000)).toEqual([0, 10, 20, 30, 40, 50, 60]);
    expect(track.some((p) => p.lon < -179)).toBe(true);
    const envPoints = shoreDb.prepare(`SELECT t_ms, depth_m FROM shore_env WHERE instrument = 'cam-n' ORDER BY t_ms`).all() as { t_ms: number; depth_m: number }[];
    expect(envPoints.map((p) => [(p.t_ms - T0) / 1000, p.depth_m])).toEqual([[0, 5], [10, 10], [20, 15], [30, 20], [40, 25], [50, 30], [60, 35]]);

    // Volumes: the same total ashore, in minute by half-metre cells.
    const shipVolume = (shipDb.prepare(`SELECT sum(volume_m3) AS v FROM volume_samples`).get() as { v: number }).v;
    const shoreVolume = (shoreDb.prepare(`SELECT sum(volume_m3) AS v FROM shore_volumes WHERE instrument = 'cam-n'`).get() as { v: number }).v;
    expect(shoreVolume).toBeCloseTo(shipVolume, 9);
    expect(shipVolume).toBeCloseTo(1.5, 9);

    // The shore export: positions per object, and the sample volume from the synced cells.
    const source = ExportSource.open(shore.dbPath, 'unused');
    const objects = [];
    for await (const o of source.objects()) objects.push(o);
    expect(objects).toHaveLength(40);
    const first = objects.find((o) => o.sha256 === sha('cam-n', 0))!;
    expect([first.lat, first.positionQuality, first.depthM]).toEqual([25.5, 'interpolated', 5]);
    const bins = await source.volumeBins(3_600_000, 0, 0, Number.MAX_SAFE_INTEGER);
    expect(bins.map((b) => [b.instrument, b.windowStart, b.bin])).toEqual([['cam-n', T0, null]]);
    expect(bins[0]!.volumeM3).toBeCloseTo(1.5, 9);
    // Darwin Core from the shore database: 8 ROIs of each class in the hour, 1.5 m³ sampled.
    const out = `${dir}/dwca.zip`;
    const summary = await exportDwc({ source, out, site: { latitude: '', longitude: '', depthMinM: '', depthMaxM: '', cruise: '', institution: 'X' }, sampling: { windowMs: 3_600_000, binM: 0 }, mediaPerOccurrence: 0 });
    await source.close();
    expect(summary).toMatchObject({ events: 1, occurrences: 4, nonOrganisms: 8 });
    const occ = unzip(out).get('occurrence.txt')!.toString().trimEnd().split('\n').map((l) => l.split('\t'));
    const calanoida = occ.find((r) => r[occ[0]!.indexOf('scientificName')] === 'Calanoida')!;
    expect(calanoida[occ[0]!.indexOf('individualCount')]).toBe('8');
    expect(Number(calanoida[occ[0]!.indexOf('organismQuantity')])).toBeCloseTo(8 / 1.5, 9);
    expect((await validateArchive(out)).errors).toEqual([]);
  }, 120_000);

  it('holds a trickle of live records within the latency budget, and sends at once past it or with a full batch', () => {
    const dir = tmp('sync-hold');
    const ship = openShip(dir, 'cam-h');
    cleanups.push(() => ship.close());
    const outbox = new Outbox(ship.store.outboxRepository(), 'cam-h');
    const take = { maxDelayMs: 10_000, maxRecords: 100, maxRawBytes: 1_000_000, exclude: new Set<number>(), holdBefore: Number.MAX_SAFE_INTEGER };
    expect(outbox.holdFor({ ...take, now: T0 })).toBe(0); // nothing queued
    ship.write(0, 2, 1, T0);
    const created = (ship.store.database.prepare(`SELECT min(created_at) AS t FROM sync_outbox`).get() as { t: number }).t;
    expect(outbox.holdFor({ ...take, now: created + 4_000 })).toBe(6_000);
    expect(outbox.holdFor({ ...take, now: created + 10_000 })).toBe(0);
    expect(outbox.holdFor({ ...take, now: created + 4_000, maxRecords: 3 })).toBe(0); // a full batch goes at once
    expect(outbox.holdFor({ ...take, now: created + 4_000, maxDelayMs: 0 })).toBe(0);
    // A row sent before (a resend) goes at once.
    outbox.claim({ maxRecords: 1, maxRawBytes: 1_000_000, exclude: new Set(), holdBefore: Number.MAX_SAFE_INTEGER, now: created + 1 });
    expect(outbox.holdFor({ ...take, now: created + 4_000 })).toBe(0);
  });

  it('queues positions, track and volumes once: a second poll with nothing new queues nothing, and a crash-free restart reads on from its marks', () => {
    const dir = tmp('sync-marks');
    const ship = openShip(dir, 'cam-m');
    cleanups.push(() => ship.close());
    ship.write(0, 250, 50, T0);
    navigate(ship, 250);
    const o = { outbox: ship.store.outboxRepository(), instrument: 'cam-m', trackIntervalMs: 0, volumeSettleMs: 0 };
    const before = shipContent(ship.dbPath).lastSeq;
    // 250 positions in records of 100, one track record (every point: interval 0), one volumes record.
    expect(queueNavRecords(o, T0 + 120_000)).toBe(3 + 1 + 1);
    expect(queueNavRecords(o, T0 + 120_000)).toBe(0);
    const kinds = ship.store.database.prepare(`SELECT kind, count(*) AS n FROM sync_outbox WHERE seq > ? GROUP BY kind ORDER BY kind`).all(before);
    expect(kinds).toEqual([{ kind: 'positions', n: 3 }, { kind: 'track', n: 1 }, { kind: 'volumes', n: 1 }]);
    const track = JSON.parse((ship.store.database.prepare(`SELECT payload FROM sync_outbox WHERE kind = 'track'`).get() as { payload: string }).payload) as { fixes: unknown[]; env: unknown[] };
    expect([track.fixes.length, track.env.length]).toEqual([61, 61]);
    // A volume row whose depth is not known yet waits while it is recent, and the rows after it too.
    ship.store.database.prepare(`INSERT INTO volume_samples (t_ms, volume_m3, source, depth_m) VALUES (?, 1, 'swept', NULL), (?, 2, 'swept', 7)`).run(T0 + 200_000, T0 + 200_500);
    expect(queueNavRecords({ ...o, volumeSettleMs: 60_000 }, T0 + 210_000)).toBe(0);
    expect(queueNavRecords({ ...o, volumeSettleMs: 60_000 }, T0 + 270_000)).toBe(1);
  });
});
