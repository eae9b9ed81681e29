// NMEA 0183 sentences into observations: position fixes (GGA, RMC, GLL, GNS), dates (ZDA, RMC) and
// speeds (VTG over ground, VHW through water), from any talker (GP, GN, GL, GA, II, IN...).
// nmea-simple checks the checksum and splits the fields; it reads an empty field as 0, so every
// field used here is checked for emptiness first (an empty position is a dropout, not 0 N 0 E).
import { parseNmeaSentence, type GGAPacket, type GLLPacket, type GNSPacket, type RMCPacket, type VHWPacket, type VTGPacket, type ZDAPacket } from 'nmea-simple';

/** What one line said. Times: `todMs` is the UTC time of day; `dateMs` the UTC midnight of its day when given. */
export type Observation =
  | { kind: 'fix'; sentence: string; todMs: number; dateMs: number | null; lat: number | null; lon: number | null; sogKn: number | null; cogDeg: number | null; fixQuality: number | null; satellites: number | null; hdop: number | null }
  | { kind: 'date'; sentence: 'ZDA'; todMs: number; dateMs: number }
  | { kind: 'speed'; sentence: 'VTG' | 'VHW'; sogKn: number | null; cogDeg: number | null; stwKn: number | null }
  | { kind: 'ignored'; sentence: string }
  | { kind: 'bad'; reason: string };

const USED = new Set(['GGA', 'RMC', 'GLL', 'GNS', 'ZDA', 'VTG', 'VHW']);

/** The XOR checksum of the characters between the leading $ (or !) and the *. */
export function nmeaChecksum(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return sum & 0xff;
}

/** `$<body>*hh` with the right checksum. */
export function withChecksum(body: string): string {
  return `$${body}*${nmeaChecksum(body).toString(16).toUpperCase().padStart(2, '0')}`;
}

/**
 * Checks the frame of a line: starts with $ or !, and the checksum when present (or required).
 * Returns the line as nmea-simple wants it (with a checksum), or the reason it is bad.
 */
export function checkFrame(line: string, requireChecksum: boolean): { ok: true; sentence: string; body: string } | { ok: false; reason: string } {
  if (!/^[$!]/.test(line)) return { ok: false, reason: 'does not start with $ or !' };
  const star = line.lastIndexOf('*');
  if (star < 0) {
    if (requireChecksum) return { ok: false, reason: 'no checksum (nav.requireChecksum)' };
    const body = line.slice(1);
    return { ok: true, sentence: withChecksum(body), body };
  }
  const body = line.slice(1, star);
  const given = line.slice(star + 1);
  if (!/^[0-9A-Fa-f]{2}$/.test(given)) return { ok: false, reason: `malformed checksum "${given.slice(0, 8)}"` };
  if (parseInt(given, 16) !== nmeaChecksum(body)) return { ok: false, reason: `checksum ${given} should be ${nmeaChecksum(body).toString(16).toUpperCase().padStart(2, '0')}` };
  return { ok: true, sentence: line, body };
}

/** Sentence id of a body ("GPGGA,..." -> "GGA"; proprietary "PSBE..." -> "PSBE..."). */
export function sentenceId(body: string): string {
  const head = body.slice(0, body.indexOf(',') < 0 ? body.length : body.indexOf(','));
  return head.startsWith('P') ? head : head.slice(2);
}

const TIME = /^(\d{2})(\d{2})(\d{2})(?:\.(\d+))?$/;

/** hhmmss[.sss] as ms into the day; null when empty or out of range. */
export function timeOfDay(field: string | undefined): number | null {
  const m = TIME.exec(field ?? '');
  if (!m) return null;
  const [h, mi, s] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (h > 23 || mi > 59 || s > 60) return null;
  const frac = m[4] ? Number(`0.${m[4]}`) : 0;
  return ((h * 60 + mi) * 60 + s) * 1000 + Math.round(frac * 1000);
}

const has = (f: string | undefined): boolean => f !== undefined && f.trim() !== '';
const num = (f: string | undefined, v: number): number | null => (has(f) && Number.isFinite(v) ? v : null);

function position(latField: string | undefined, lonField: string | undefined, lat: number, lon: number): { lat: number | null; lon: number | null } {
  if (!has(latField) || !has(lonField) || !Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return { lat: null, lon: null };
  return { lat, lon };
}

/** ddmmyy (RMC) as the UTC midnight; null when empty or invalid. */
function rmcDate(field: string | undefined): number | null {
  const m = /^(\d{2})(\d{2})(\d{2})$/.exec(field ?? '');
  if (!m) return null;
  const yy = Number(m[3]);
  return utcDate(yy < 80 ? 2000 + yy : 1900 + yy, Number(m[2]), Number(m[1]));
}

function utcDate(year: number, month: number, day: number): number | null {
  if (month < 1 || month > 12 || day < 1 || day > 31) return null;
  const t = Date.UTC(year, month - 1, day);
  return new Date(t).getUTCDate() === day ? t : null;
}

/** Decodes one checked NMEA line (see checkFrame). */
export function decodeNmea(sentence: string, body: string): Observation {
  const id = sentenceId(body);
  if (!USED.has(id)) return { kind: 'ignored', sentence: id };
  const f = body.split(',');
  let p;
  try {
    p = parseNmeaSentence(sentence);
  } catch (err) {
    return { kind: 'bad', reason: `${id}: ${(err as Error).message.slice(0, 120)}` };
  }
  switch (p.sentenceId) {
    case 'GGA': {
      const g = p as GGAPacket;
      const tod = timeOfDay(f[1]);
      if (tod === null) return { kind: 'bad', reason: 'GGA: no valid UTC time' };
      const quality = has(f[6]) ? Number(f[6]) : null;
      const pos = quality === 0 ? { lat: null, lon: null } : position(f[2], f[4], g.latitude, g.longitude);
      return { kind: 'fix', sentence: 'GGA', todMs: tod, dateMs: null, ...pos, sogKn: null, cogDeg: null, fixQuality: quality, satellites: num(f[7], g.satellitesInView), hdop: num(f[8], g.horizontalDilution) };
    }
    case 'RMC': {
      const r = p as RMCPacket;
      const tod = timeOfDay(f[1]);
      if (tod === null) return { kind: 'bad', reason: 'RMC: no valid UTC time' };
      const valid = r.status === 'valid';
      const pos = valid ? position(f[3], f[5], r.latitude, r.longitude) : { lat: null, lon: null };
      return { kind: 'fix', sentence: 'RMC', todMs: tod, dateMs: rmcDate(f[9]), ...pos, sogKn: valid ? num(f[7], r.speedKnots) : null, cogDeg: valid ? num(f[8], r.trackTrue) : null, fixQuality: null, satellites: null, hdop: null };
    }
    case 'GLL': {
      const g = p as GLLPacket;
      const tod = timeOfDay(f[5]);
      if (tod === null) return { kind: 'ignored', sentence: 'GLL' };
      const pos = g.status === 'valid' ? position(f[1], f[3], g.latitude, g.longitude) : { lat: null, lon: null };
      return { kind: 'fix', sentence: 'GLL', todMs: tod, dateMs: null, ...pos, sogKn: null, cogDeg: null, fixQuality: null, satellites: null, hdop: null };
    }
    case 'GNS': {
      const g = p as GNSPacket;
      const tod = timeOfDay(f[1]);
      if (tod === null) return { kind: 'bad', reason: 'GNS: no valid UTC time' };
      const noFix = /^N*$/.test(f[6] ?? '');
      const pos = noFix ? { lat: null, lon: null } : position(f[2], f[4], g.latitude, g.longitude);
      return { kind: 'fix', sentence: 'GNS', todMs: tod, dateMs: null, ...pos, sogKn: null, cogDeg: null, fixQuality: null, satellites: num(f[7], g.satellitesInView), hdop: num(f[8], g.horizontalDilution) };
    }
    case 'ZDA': {
      const z = p as ZDAPacket;
      const tod = timeOfDay(f[1]);
      const date = has(f[2]) && has(f[3]) && has(f[4]) ? utcDate(Number(f[4]), Number(f[3]), Number(f[2])) : null;
      if (tod === null || date === null || z.sentenceId !== 'ZDA') return { kind: 'bad', reason: 'ZDA: no valid date and time' };
      return { kind: 'date', sentence: 'ZDA', todMs: tod, dateMs: date };
    }
    case 'VTG': {
      const v = p as VTGPacket;
      // NMEA 2.3 adds a mode field; mode N means the data are not valid.
      if (f[9] === 'N') return { kind: 'speed', sentence: 'VTG', sogKn: null, cogDeg: null, stwKn: null };
      const kn = num(f[5], v.speedKnots ?? NaN) ?? num(f[7], (v.speedKmph ?? NaN) / 1.852);
      return { kind: 'speed', sentence: 'VTG', sogKn: kn, cogDeg: num(f[1], v.trackTrue), stwKn: null };
    }
    case 'VHW': {
      const v = p as VHWPacket;
      const kn = num(f[5], v.speedKnots ?? NaN) ?? num(f[7], (v.speedKmph ?? NaN) / 1.852);
      return { kind: 'speed', sentence: 'VHW', sogKn: null, cogDeg: null, stwKn: kn };
    }
    default:
      return { kind: 'ignored', sentence: id };
  }
}
