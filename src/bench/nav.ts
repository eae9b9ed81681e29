// The navigation stage's costs: NMEA/CTD lines decoded per second, and ROIs tagged per second on a
// real SQLite file holding an hour of 1 Hz fixes and CTD samples (the camera averages about 32
// ROIs/s). Synthetic data, known exactly; no images needed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaults } from '../config/index.js';
import { silentLogger } from '../log.js';
import { LineDecoder } from '../nav/decoder.js';
import { ctdFormat } from '../nav/ctd.js';
import { NavStage, withChecksum } from '../nav/index.js';
import { Store } from '../store/index.js';
import type { ClassifiedFrame } from '../types.js';

export interface NavBenchResult {
  linesPerSecond: number;
  roisTaggedPerSecond: number;
  rois: number;
  fixes: number;
}

const hms = (t: number) => new Date(t).toISOString().slice(11, 19).replace(/:/g, '');
const dmy = (t: number) => new Date(t).toISOString().slice(2, 10).split('-').reverse().join('');

export async function benchNav(o: { rois?: number; log: (line: string) => void }): Promise<NavBenchResult> {
  const start = Date.UTC(2026, 11, 7, 12);
  const seconds = 3600;
  const lines: string[] = [];
  for (let s = 0; s < seconds; s++) {
    const t = start + s * 1000;
    lines.push(withChecksum(`GPRMC,${hms(t)},A,1730.000,S,17959.${String(s % 1000).padStart(3, '0')},E,3.0,90.0,${dmy(t)},,,A`));
    lines.push(withChecksum(`IIVHW,90.0,T,,M,3.00,N,,K`));
    lines.push(withChecksum(`PCTD,${hms(t)},${(2 + (s % 40)).toFixed(3)},12.000,35.000`));
  }
  const decoder = new LineDecoder({ source: 'bench', requireChecksum: true, ctd: ctdFormat('', '$PCTD time=1 depth=2 temperature=3 salinity=4'), defaultLatitude: 45, depthOffsetM: 0, latitude: () => null });
  const t0 = performance.now();
  let decoded = 0;
  for (let round = 0; round < 5; round++) for (const line of lines) decoded += decoder.decode(line, start).length;
  const linesPerSecond = Math.round((lines.length * 5) / ((performance.now() - t0) / 1000));
  o.log(`decoded ${lines.length * 5} lines (${decoded} items): ${linesPerSecond} lines/s`);

  const dir = mkdtempSync(path.join(tmpdir(), 'pw-bench-nav-'));
  const store = new Store({ path: path.join(dir, 'pw.db'), countsWindowMs: 60_000, logger: silentLogger() });
  store.open();
  try {
    const config = { ...defaults().nav, enabled: true, ctd: { ...defaults().nav.ctd, fields: '$PCTD time=1 depth=2 temperature=3 salinity=4' } };
    const stage = new NavStage({ config, instrument: 'bench', countsWindowMs: 60_000, repository: store.navRepository(), logger: silentLogger() });
    await stage.start();
    for (const line of lines) stage.onLine(line, Date.now(), 'bench');
    stage.flush();
    const rois = o.rois ?? 20_000;
    const frames: ClassifiedFrame[] = Array.from({ length: rois }, (_, i) => {
      const t = start + Math.floor((i * seconds * 1000) / rois);
      const relPath = `${new Date(t).toISOString().replace(/[-:]/g, '')}_${i}.jpg`;
      return {
        frame: { file: { path: `/nonexistent/${relPath}`, relPath, sha256: i.toString(16).padStart(64, '0'), bytes: 1000, arrivedAt: t }, width: 40, height: 40, area: 400, format: 'jpeg', inputs: new Map() },
        prediction: { label: `class${i % 7}`, probability: 0.9, margin: 0.5, disagreement: 0, topK: [{ label: `class${i % 7}`, probability: 0.9 }], members: [], ensembleVersion: 'bench' },
        classifiedAt: t,
      };
    });
    for (let i = 0; i < frames.length; i += 256) store.recordClassified(frames.slice(i, i + 256));
    const t1 = performance.now();
    for (let i = 0; i < frames.length; i += 256) stage.tagStored(frames.slice(i, i + 256).map((f) => f.frame.file));
    await stage.settled();
    const roisTaggedPerSecond = Math.round(rois / ((performance.now() - t1) / 1000));
    o.log(`tagged ${rois} ROIs against ${stage.stats.fixes} fixes: ${roisTaggedPerSecond} ROIs/s`);
    await stage.stop();
    return { linesPerSecond, roisTaggedPerSecond, rois, fixes: stage.stats.fixes };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
