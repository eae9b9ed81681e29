// A synthetic tow in a real ship database: five real ROIs (the tiny fixtures) tagged with known
// positions and depths in roi_positions, and known sampled volumes in volume_samples, so that
// every position, volume and concentration an export writes can be checked exactly.
//
//   ROI  label              capture    depth  lat    lon      tag
//   0    copepod_calanoid   22:00:10   7      25.70  -80.10   interpolated
//   1    copepod_calanoid   22:00:20   8      25.72  -80.12   interpolated
//   2    detritus_other     22:00:30   6      25.71  -80.11   interpolated
//   3    chaetognath_other  22:00:40   12     25.80  -80.20   held
//   4    copepod_calanoid   22:00:50   (no row: the station's position, depth unknown)
//
// Volumes (m³): 0.25 at 7.5 m and 0.25 at 9.9 m (bin 5-10: 0.5), 0.5 at 12 m (bin 10-15), 0.125
// at an unknown depth, and 1.0 at 7 m in the next hour (another event, never counted here).
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { classified, fixtureFiles, incoming } from '../store/helpers.js';
import { tmp } from '../sync/helpers.js';

export const TOW_T0 = Date.UTC(2014, 5, 3, 22, 0, 0);
export const TOW_SITE = { latitude: '26', longitude: '-79.5', depthMinM: '0', depthMaxM: '100', cruise: 'WS1406', institution: 'OSU' };

export const TOW_ROIS = [
  { label: 'copepod_calanoid', at: 10, depth: 7, lat: 25.7, lon: -80.1, quality: 'interpolated' },
  { label: 'copepod_calanoid', at: 20, depth: 8, lat: 25.72, lon: -80.12, quality: 'interpolated' },
  { label: 'detritus_other', at: 30, depth: 6, lat: 25.71, lon: -80.11, quality: 'interpolated' },
  { label: 'chaetognath_other', at: 40, depth: 12, lat: 25.8, lon: -80.2, quality: 'held' },
  { label: 'copepod_calanoid', at: 50, depth: null, lat: null, lon: null, quality: null },
] as const;

/** Builds the tow; images are copied to `archive` under tow-1/. */
export function towDatabase(): { db: string; archive: string; shas: string[] } {
  const dir = tmp('tow');
  const archive = path.join(dir, 'archive');
  const db = path.join(dir, 'ship.db');
  mkdirSync(path.join(archive, 'tow-1'), { recursive: true });
  const store = new Store({ path: db, countsWindowMs: 60_000, logger: silentLogger() });
  store.open();
  const shas: string[] = [];
  fixtureFiles().forEach((f, i) => {
    const roi = TOW_ROIS[i]!;
    const rel = `tow-1/${path.basename(f)}`;
    const inc = incoming(f, rel, TOW_T0 + roi.at * 1000);
    shas.push(inc.sha256);
    store.recordClassified([classified(inc, roi.label, TOW_T0 + roi.at * 1000 + 500)]);
    copyFileSync(f, path.join(archive, rel));
  });
  const conn = store.database;
  const ids = conn.prepare('SELECT id, sha256 FROM frames').all() as { id: number; sha256: string }[];
  const idOf = new Map(ids.map((r) => [r.sha256, r.id]));
  const pos = conn.prepare(`INSERT INTO roi_positions (frame_id, t_ms, time_source, lat, lon, depth_m, temperature_c, salinity, quality, gap_s, env_quality, env_gap_s, tagged_at)
    VALUES (?, ?, 'filename', ?, ?, ?, ?, 36.1, ?, 1, ?, 1, ?)`);
  TOW_ROIS.forEach((roi, i) => {
    if (roi.quality === null) return;
    pos.run(idOf.get(shas[i]!), TOW_T0 + roi.at * 1000, roi.lat, roi.lon, roi.depth, 24.5, roi.quality, roi.quality, TOW_T0 + 60_000);
  });
  const vol = conn.prepare(`INSERT INTO volume_samples (t_ms, volume_m3, source, depth_m) VALUES (?, ?, 'swept', ?)`);
  vol.run(TOW_T0 + 5_000, 0.25, 7.5);
  vol.run(TOW_T0 + 15_000, 0.25, 9.9);
  vol.run(TOW_T0 + 35_000, 0.5, 12);
  vol.run(TOW_T0 + 45_000, 0.125, null);
  vol.run(TOW_T0 + 3_605_000, 1.0, 7);
  store.close();
  return { db, archive, shas };
}
