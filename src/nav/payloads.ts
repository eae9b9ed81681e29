// The MQTT messages of the nav stage (documented in docs/mqtt.md): the concentrations of one window,
// the retained depth profile, and the retained latest position and water.
import type { ConcentrationRow, RoiPosition } from '../store/index.js';
import { ALL, type ProfileBin } from './concentrations.js';

export interface ConcentrationBinPayload {
  depthMinM: number | null;
  depthMaxM: number | null;
  volumeM3: number;
  total: number;
  counts: Record<string, number>;
  /** Individuals per m³ per class; null when no volume was sampled. */
  perM3: Record<string, number | null>;
}

export interface ConcentrationsPayload extends ConcentrationBinPayload {
  instrument: string;
  window: { start: string; end: string; startMs: number; endMs: number };
  /** Mean position of the window's ROIs. */
  lat: number | null;
  lon: number | null;
  /** Depth bins of depthBinM metres, shallowest first. */
  binM: number;
  bins: ConcentrationBinPayload[];
}

export interface ProfilePayload {
  instrument: string;
  from: string;
  to: string;
  fromMs: number;
  toMs: number;
  binM: number;
  bins: ProfileBin[];
  position: PositionPayload | null;
}

export interface PositionPayload {
  t: string;
  tMs: number;
  lat: number | null;
  lon: number | null;
  depthM: number | null;
  temperatureC: number | null;
  salinity: number | null;
  quality: string;
  envQuality: string;
}

function binOf(rows: readonly ConcentrationRow[]): ConcentrationBinPayload {
  const first = rows[0];
  const out: ConcentrationBinPayload = { depthMinM: first?.depthMinM ?? null, depthMaxM: first?.depthMaxM ?? null, volumeM3: first?.volumeM3 ?? 0, total: 0, counts: {}, perM3: {} };
  for (const r of rows) {
    if (r.label === ALL) {
      out.total = r.count;
      continue;
    }
    out.counts[r.label] = r.count;
    out.perM3[r.label] = r.perM3;
  }
  return out;
}

/** One window's message from its rows (both bin sizes). */
export function concentrationsPayload(instrument: string, binM: number, rows: readonly ConcentrationRow[]): ConcentrationsPayload | null {
  const whole = rows.filter((r) => r.binM === 0);
  const first = whole[0];
  if (!first) return null;
  const byBin = new Map<number, ConcentrationRow[]>();
  for (const r of rows) if (r.binM !== 0 && r.depthMinM !== null) byBin.set(r.depthMinM, [...(byBin.get(r.depthMinM) ?? []), r]);
  return {
    instrument,
    window: { start: new Date(first.windowStart).toISOString(), end: new Date(first.windowEnd).toISOString(), startMs: first.windowStart, endMs: first.windowEnd },
    lat: first.lat,
    lon: first.lon,
    ...binOf(whole),
    binM,
    bins: [...byBin.entries()].sort(([a], [b]) => a - b).map(([, r]) => binOf(r)),
  };
}

export function positionPayload(p: RoiPosition): PositionPayload {
  return {
    t: new Date(p.tMs).toISOString(), tMs: p.tMs, lat: p.lat, lon: p.lon, depthM: p.depthM, temperatureC: p.temperatureC, salinity: p.salinity,
    quality: p.quality, envQuality: p.envQuality,
  };
}

export function profilePayload(instrument: string, fromMs: number, toMs: number, binM: number, bins: ProfileBin[], position: PositionPayload | null): ProfilePayload {
  return { instrument, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), fromMs, toMs, binM, bins, position };
}
