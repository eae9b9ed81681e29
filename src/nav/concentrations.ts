// Concentrations: individuals per m³ = ROIs counted / volume sampled, per class, per counts window
// (by capture time) and per depth bin, plus the whole water column of the window (bin 0). The label
// "*" is all classes together; its rows carry each window's and bin's volume once (the profile sums
// volume from them). ROIs or volume without a depth count only in the whole column.
import type { ConcentrationRow, NavRepository, TaggedRoi, VolumeRow } from '../store/index.js';
import { interpolateLongitude } from './geo.js';

export const ALL = '*';

interface Cell {
  depthMin: number | null;
  depthMax: number | null;
  volume: number;
  counts: Map<string, number>;
}

/** The rows of one window: bin_m 0 (whole column) and bin_m = binM (each bin with data). */
export function windowRows(windowMs: number, windowStart: number, binM: number, rois: readonly TaggedRoi[], volumes: readonly VolumeRow[], now: number): ConcentrationRow[] {
  const whole: Cell = { depthMin: null, depthMax: null, volume: 0, counts: new Map() };
  const bins = new Map<number, Cell>();
  const cell = (depth: number): Cell => {
    const i = Math.floor(depth / binM);
    let c = bins.get(i);
    if (!c) bins.set(i, (c = { depthMin: i * binM, depthMax: (i + 1) * binM, volume: 0, counts: new Map() }));
    return c;
  };
  const widen = (d: number | null) => {
    if (d === null) return;
    whole.depthMin = whole.depthMin === null ? d : Math.min(whole.depthMin, d);
    whole.depthMax = whole.depthMax === null ? d : Math.max(whole.depthMax, d);
  };
  for (const v of volumes) {
    whole.volume += v.volumeM3;
    if (v.depthM !== null) {
      cell(v.depthM).volume += v.volumeM3;
      widen(v.depthM);
    }
  }
  const bump = (c: Cell, label: string) => c.counts.set(label, (c.counts.get(label) ?? 0) + 1);
  for (const r of rois) {
    for (const label of [r.label, ALL]) {
      bump(whole, label);
      if (r.depthM !== null) bump(cell(r.depthM), label);
    }
    widen(r.depthM);
  }
  const { lat, lon } = meanPosition(rois);
  const out: ConcentrationRow[] = [];
  const emit = (c: Cell, bin: number) => {
    if (!c.counts.has(ALL)) c.counts.set(ALL, 0);
    for (const [label, count] of [...c.counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      out.push({
        windowMs, windowStart, windowEnd: windowStart + windowMs, binM: bin, depthMinM: c.depthMin, depthMaxM: c.depthMax, label, count,
        volumeM3: c.volume, perM3: c.volume > 0 ? count / c.volume : null, lat, lon, computedAt: now,
      });
    }
  };
  if (rois.length === 0 && volumes.length === 0) return out;
  emit(whole, 0);
  for (const [, c] of [...bins].sort(([a], [b]) => a - b)) emit(c, binM);
  return out;
}

/** The mean position of the ROIs of a window, across the antimeridian when they straddle it. */
export function meanPosition(rois: readonly { lat: number | null; lon: number | null }[]): { lat: number | null; lon: number | null } {
  let n = 0;
  let lat = 0;
  let lon: number | null = null;
  for (const r of rois) {
    if (r.lat === null || r.lon === null) continue;
    n++;
    lat += (r.lat - lat) / n;
    lon = lon === null ? r.lon : interpolateLongitude(lon, r.lon, 1 / n);
  }
  return n === 0 ? { lat: null, lon: null } : { lat, lon };
}

/** Computes and stores one window; returns its rows. */
export function computeWindow(repo: NavRepository, windowMs: number, windowStart: number, binM: number, now: number): ConcentrationRow[] {
  const end = windowStart + windowMs;
  const rows = windowRows(windowMs, windowStart, binM, repo.taggedRois(windowStart, end), repo.volumesBetween(windowStart, end), now);
  repo.replaceConcentrations(windowMs, windowStart, rows);
  return rows;
}

export interface ProfileBin {
  depthMinM: number;
  depthMaxM: number;
  volumeM3: number;
  total: number;
  counts: Record<string, number>;
  perM3: Record<string, number | null>;
}

/** The depth profile over the windows of the rows given (one bin size): counts and volume summed per bin. */
export function profileOf(rows: readonly ConcentrationRow[]): ProfileBin[] {
  const bins = new Map<number, ProfileBin>();
  for (const r of rows) {
    if (r.depthMinM === null || r.depthMaxM === null) continue;
    let b = bins.get(r.depthMinM);
    if (!b) bins.set(r.depthMinM, (b = { depthMinM: r.depthMinM, depthMaxM: r.depthMaxM, volumeM3: 0, total: 0, counts: {}, perM3: {} }));
    if (r.label === ALL) {
      b.volumeM3 += r.volumeM3;
      b.total += r.count;
    } else {
      b.counts[r.label] = (b.counts[r.label] ?? 0) + r.count;
    }
  }
  const out = [...bins.values()].sort((a, b) => a.depthMinM - b.depthMinM);
  for (const b of out) for (const [label, n] of Object.entries(b.counts)) b.perM3[label] = b.volumeM3 > 0 ? n / b.volumeM3 : null;
  return out;
}
