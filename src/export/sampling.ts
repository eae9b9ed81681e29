// How exports cut the ROIs into samples: a tow segment is a window of export.eventMinutes by
// capture time (an EcoTaxa sample), cut again into depth bins of export.depthBinM metres (an EcoTaxa
// acquisition, a Darwin Core event). Each has the volume sampled in it (volume_samples, by the same
// window and bin), so concentration = count / volume. Where a ROI has no position or depth, the
// config's fixed station (export.latitude, .longitude, .depthMinM, .depthMaxM) stands in, and the
// export says so.
import type { ExportObject, VolumeBin } from './source.js';

/** The export section of the config, as far as sampling and fixed metadata go. */
export interface SiteMetadata {
  latitude: string;
  longitude: string;
  depthMinM: string;
  depthMaxM: string;
  cruise: string;
  institution: string;
}

export interface Sampling {
  windowMs: number;
  /** 0: one bin per window, whatever the depth. */
  binM: number;
}

export const DEFAULT_SAMPLING: Sampling = { windowMs: 3_600_000, binM: 5 };

/** One depth bin of one tow segment of one instrument. */
export interface SampleKey {
  instrument: string;
  windowStart: number;
  /** floor(depth / binM); null: unknown depth, or binM 0. */
  bin: number | null;
}

export function sampleKeyOf(o: Pick<ExportObject, 'instrument' | 'capturedAt' | 'depthM'>, s: Sampling): SampleKey {
  const windowStart = Math.floor(o.capturedAt / s.windowMs) * s.windowMs;
  const bin = s.binM > 0 && o.depthM !== null ? Math.floor(o.depthM / s.binM) : null;
  return { instrument: o.instrument, windowStart, bin };
}

/** A map key for a SampleKey. */
export function keyString(k: SampleKey): string {
  return `${k.instrument}|${k.windowStart}|${k.bin ?? ''}`;
}

/** `<cruise_>instrument_YYYYMMDDTHHMM`: the tow segment (EcoTaxa sample). */
export function segmentId(k: Pick<SampleKey, 'instrument' | 'windowStart'>, cruise: string): string {
  const iso = new Date(k.windowStart).toISOString();
  return `${cruise ? `${cruise}_` : ''}${k.instrument}_${iso.slice(0, 10).replace(/-/g, '')}T${iso.slice(11, 13)}${iso.slice(14, 16)}`;
}

/** The segment id, then the depth bin (`_5-10m`, `_depth-unknown`) when bins are on: the Darwin Core event, the EcoTaxa acquisition. */
export function eventId(k: SampleKey, cruise: string, s: Sampling): string {
  const seg = segmentId(k, cruise);
  if (s.binM <= 0) return seg;
  if (k.bin === null) return `${seg}_depth-unknown`;
  return `${seg}_${fmt(k.bin * s.binM)}-${fmt((k.bin + 1) * s.binM)}m`;
}

/** Depth range of a bin, or null (no bins, or unknown depth). */
export function binRange(k: SampleKey, s: Sampling): [number, number] | null {
  if (s.binM <= 0 || k.bin === null) return null;
  return [round(k.bin * s.binM, 3), round((k.bin + 1) * s.binM, 3)];
}

/** Sampled volumes by event and by segment (every depth), m³. */
export class VolumeTable {
  private readonly byEvent = new Map<string, number>();
  private readonly bySegment = new Map<string, number>();

  constructor(bins: readonly VolumeBin[]) {
    for (const b of bins) {
      const k = keyString({ instrument: b.instrument, windowStart: b.windowStart, bin: b.bin });
      this.byEvent.set(k, (this.byEvent.get(k) ?? 0) + b.volumeM3);
      const seg = `${b.instrument}|${b.windowStart}`;
      this.bySegment.set(seg, (this.bySegment.get(seg) ?? 0) + b.volumeM3);
    }
  }

  /** m³ sampled in the event (its window and depth bin); null when none was recorded. */
  event(k: SampleKey): number | null {
    const v = this.byEvent.get(keyString(k));
    return v === undefined ? null : v;
  }

  /** m³ sampled in the whole tow segment, every depth; null when none was recorded. */
  segment(k: Pick<SampleKey, 'instrument' | 'windowStart'>): number | null {
    const v = this.bySegment.get(`${k.instrument}|${k.windowStart}`);
    return v === undefined ? null : v;
  }
}

/** Where a ROI was: its own tags, or the station's. `source` says which. */
export interface Placed {
  lat: number | null;
  lon: number | null;
  depthMin: number | null;
  depthMax: number | null;
  positionSource: 'interpolated' | 'held' | 'station';
  depthSource: 'interpolated' | 'held' | 'station';
}

/** A ROI's position and depth, falling back to the station's for whatever its tags lack. */
export function place(o: Pick<ExportObject, 'lat' | 'lon' | 'depthM' | 'positionQuality' | 'envQuality'>, site: SiteMetadata): Placed {
  const own = o.lat !== null && o.lon !== null;
  const ownDepth = o.depthM !== null;
  return {
    lat: own ? o.lat : numberOrNull(site.latitude),
    lon: own ? o.lon : numberOrNull(site.longitude),
    depthMin: ownDepth ? o.depthM : numberOrNull(site.depthMinM),
    depthMax: ownDepth ? o.depthM : numberOrNull(site.depthMaxM),
    positionSource: own ? (o.positionQuality === 'held' ? 'held' : 'interpolated') : 'station',
    depthSource: ownDepth ? (o.envQuality === 'held' ? 'held' : 'interpolated') : 'station',
  };
}

export function numberOrNull(s: string): number | null {
  if (s.trim() === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/** Running mean position, longitudes averaged on the circle (a track across 180° stays there). */
export class MeanPosition {
  private n = 0;
  private lat = 0;
  private x = 0;
  private y = 0;

  add(lat: number | null, lon: number | null): void {
    if (lat === null || lon === null) return;
    this.n++;
    this.lat += lat;
    const r = (lon * Math.PI) / 180;
    this.x += Math.cos(r);
    this.y += Math.sin(r);
  }

  get count(): number {
    return this.n;
  }

  /** [lat, lon] rounded to 6 decimals (about 0.1 m), or null with no position. */
  value(): [number, number] | null {
    if (this.n === 0) return null;
    let lon = (Math.atan2(this.y, this.x) * 180) / Math.PI;
    if (lon <= -180) lon += 360;
    return [round(this.lat / this.n, 6), round(lon, 6)];
  }
}

export function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

function fmt(x: number): string {
  return String(round(x, 3));
}
