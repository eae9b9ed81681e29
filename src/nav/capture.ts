// When, and with what values, an ROI was captured: the time from its file name (nav.time
// .filenamePattern), its EXIF, or its sidecar, else its arrival; and the values a per-image sidecar
// (<name>.json) or its folder's sidecar (nav.sidecar.folderFile) give.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PlankwatchError } from '../errors.js';
import type { TimeSource } from '../store/index.js';
import { exifCaptureTime } from './exif.js';

/** Values from sidecars (any may be absent). */
export interface SidecarValues {
  t?: number;
  lat?: number;
  lon?: number;
  depthM?: number;
  pressureDbar?: number;
  temperatureC?: number;
  salinity?: number;
  volumeM3?: number;
}

export interface Capture {
  t: number;
  timeSource: TimeSource;
  /** The image's sidecar merged over its folder's (image values win); null when neither. */
  sidecar: SidecarValues | null;
  /** Sidecars that could not be read (PW_E_NAV_SIDECAR). */
  problems: string[];
}

export interface CaptureOptions {
  filenamePattern: string;
  exif: boolean;
  perImage: boolean;
  folderFile: string;
}

/** Builds the file-name time reader; throws PW_E_CONFIG_INVALID for a bad pattern. */
export function filenameTimeReader(pattern: string): (name: string) => number | null {
  if (pattern === '') return () => null;
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `nav.time.filenamePattern is not a valid regular expression: ${(err as Error).message}`);
  }
  return (name) => {
    const g = re.exec(name)?.groups;
    if (!g) return null;
    const n = (k: string): number => Number(g[k] ?? 0);
    const [y, mo, d, h, mi, s] = [n('year'), n('month'), n('day'), n('hour'), n('minute'), n('second')];
    if (!g.year || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
    const t = Date.UTC(y, mo - 1, d, h, mi, s) + (g.fraction ? Math.round(Number(`0.${g.fraction}`) * 1000) : 0);
    return new Date(t).getUTCDate() === d || s === 60 ? t : null;
  };
}

const KEYS: [string, keyof SidecarValues][] = [
  ['lat', 'lat'], ['latitude', 'lat'], ['lon', 'lon'], ['longitude', 'lon'], ['depth_m', 'depthM'], ['pressure_dbar', 'pressureDbar'],
  ['temperature_c', 'temperatureC'], ['salinity', 'salinity'], ['volume_m3', 'volumeM3'],
];

/** Parses sidecar JSON; throws with the reason. */
export function parseSidecar(text: string): SidecarValues {
  const raw = JSON.parse(text) as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a JSON object');
  const o = raw as Record<string, unknown>;
  const out: SidecarValues = {};
  for (const [key, slot] of KEYS) {
    const v = o[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`"${key}" is not a number`);
    out[slot] = v;
  }
  if (out.lat !== undefined && Math.abs(out.lat) > 90) throw new Error('"lat" is outside -90..90');
  if (out.lon !== undefined && Math.abs(out.lon) > 180) throw new Error('"lon" is outside -180..180');
  if (out.volumeM3 !== undefined && out.volumeM3 < 0) throw new Error('"volume_m3" is negative');
  const time = o.time ?? o.t;
  if (time !== undefined) {
    const t = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : NaN;
    if (!Number.isFinite(t)) throw new Error('"time" is neither ms since the epoch nor ISO 8601');
    out.t = t;
  }
  return out;
}

export class CaptureReader {
  private readonly fromName: (name: string) => number | null;
  /** Folder sidecars read, by folder (null: none there). Small: one per folder. */
  private readonly folders = new Map<string, Promise<{ values: SidecarValues | null; problem?: string }>>();

  constructor(private readonly o: CaptureOptions) {
    this.fromName = filenameTimeReader(o.filenamePattern);
  }

  /** The capture of one image file (which may already have been moved: then name and arrival only). */
  async read(file: { path: string; relPath: string; arrivedAt: number }): Promise<Capture> {
    const problems: string[] = [];
    const own = this.o.perImage ? await readSidecar(sidecarPathOf(file.path), problems) : null;
    const folder = await this.folder(path.dirname(file.path), problems);
    const sidecar = own || folder ? { ...folder, ...own } : null;
    const byName = this.fromName(path.basename(file.relPath)) ?? this.fromName(file.relPath);
    if (byName !== null) return { t: byName, timeSource: 'filename', sidecar, problems };
    if (this.o.exif && /\.(jpe?g|tiff?)$/i.test(file.path)) {
      const t = await exifCaptureTime(file.path);
      if (t !== null) return { t, timeSource: 'exif', sidecar, problems };
    }
    if (own?.t !== undefined) return { t: own.t, timeSource: 'sidecar', sidecar, problems };
    return { t: file.arrivedAt, timeSource: 'arrival', sidecar, problems };
  }

  /** The name-based time only (for frames whose file is gone). */
  fromFileName(relPath: string, arrivedAt: number): Capture {
    const t = this.fromName(path.basename(relPath)) ?? this.fromName(relPath);
    return t !== null ? { t, timeSource: 'filename', sidecar: null, problems: [] } : { t: arrivedAt, timeSource: 'arrival', sidecar: null, problems: [] };
  }

  private async folder(dir: string, problems: string[]): Promise<SidecarValues | null> {
    if (this.o.folderFile === '') return null;
    let entry = this.folders.get(dir);
    if (!entry) {
      const found: string[] = [];
      entry = readSidecar(path.join(dir, this.o.folderFile), found).then((values) => ({ values, ...(found[0] ? { problem: found[0] } : {}) }));
      if (this.folders.size > 1000) this.folders.clear();
      this.folders.set(dir, entry);
    }
    const { values, problem } = await entry;
    if (problem) problems.push(problem);
    return values;
  }
}

/** <image without its extension>.json. */
export function sidecarPathOf(imagePath: string): string {
  const ext = path.extname(imagePath);
  return `${imagePath.slice(0, imagePath.length - ext.length)}.json`;
}

async function readSidecar(file: string, problems: string[]): Promise<SidecarValues | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${file}: ${(err as Error).message}`);
    return null;
  }
  try {
    return parseSidecar(text);
  } catch (err) {
    problems.push(`${file}: ${(err as Error).message}`);
    return null;
  }
}
