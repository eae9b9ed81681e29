// CTD lines in a format of the instrument maker's: a regular expression with named groups, or a
// sentence id with the index of each field (nav.ctd). Values the line gives; depth from pressure is
// computed later, where the latitude is known.
import { PlankwatchError } from '../errors.js';
import { nmeaChecksum } from './nmea.js';
import { timeOfDay } from './nmea.js';

/** What a CTD line gave; any may be absent. Time as ms into the UTC day, or a full instant. */
export interface CtdValues {
  depthM: number | null;
  pressureDbar: number | null;
  temperatureC: number | null;
  salinity: number | null;
  todMs: number | null;
  instantMs: number | null;
}

export type CtdParse = { ok: true; values: CtdValues } | { ok: false; reason: string } | null;

/** Reads CTD lines; `parse` answers null for a line that is not a CTD line. */
export interface CtdFormat {
  parse(line: string): CtdParse;
}

const NAMES = ['depth', 'pressure', 'temperature', 'salinity', 'time'] as const;
type Name = (typeof NAMES)[number];

/**
 * The format from nav.ctd: `fields` ("$PCTD pressure=1 temperature=2 salinity=3") when set, else
 * `pattern`; none when both are empty. Throws PW_E_CONFIG_INVALID naming the key.
 */
export function ctdFormat(pattern: string, fields: string): CtdFormat | null {
  if (fields.trim() !== '') return fieldFormat(fields);
  if (pattern.trim() === '') return null;
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `nav.ctd.pattern is not a valid regular expression: ${(err as Error).message}`);
  }
  const groups = Object.keys(new RegExp(`${pattern}|`).exec('')?.groups ?? {});
  if (!groups.some((g) => g !== 'time' && (NAMES as readonly string[]).includes(g))) {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `nav.ctd.pattern must have at least one named group among depth, pressure, temperature, salinity, e.g. (?<pressure>[-\\d.]+)`);
  }
  return {
    parse: (line) => {
      const m = re.exec(line);
      if (!m) return null;
      const bad = checksumProblem(line);
      if (bad) return { ok: false, reason: bad };
      return values((name) => m.groups?.[name]);
    },
  };
}

function fieldFormat(spec: string): CtdFormat {
  const [id, ...pairs] = spec.trim().split(/\s+/);
  const index = new Map<Name, number>();
  for (const pair of pairs) {
    const [name, i] = pair.split('=');
    if (!(NAMES as readonly string[]).includes(name ?? '') || !/^\d+$/.test(i ?? '') || Number(i) === 0) {
      throw new PlankwatchError('PW_E_CONFIG_INVALID', `nav.ctd.fields: "${pair}" should be name=index with name one of ${NAMES.join(', ')} and index 1 or more, e.g. "$PCTD pressure=1 temperature=2"`);
    }
    index.set(name as Name, Number(i));
  }
  if (!id || index.size === 0) throw new PlankwatchError('PW_E_CONFIG_INVALID', `nav.ctd.fields needs a sentence id and at least one name=index, e.g. "$PCTD pressure=1 temperature=2"`);
  return {
    parse: (line) => {
      const star = line.lastIndexOf('*');
      const fields = (star >= 0 ? line.slice(0, star) : line).split(',');
      if (fields[0] !== id) return null;
      const bad = checksumProblem(line);
      if (bad) return { ok: false, reason: bad };
      return values((name) => {
        const i = index.get(name);
        return i === undefined ? undefined : fields[i];
      });
    },
  };
}

/** A wrong *hh checksum at the end of a $-sentence, or null. */
function checksumProblem(line: string): string | null {
  const m = /^[$!](.*)\*([0-9A-Fa-f]{2})\s*$/.exec(line);
  if (!m) return null;
  return parseInt(m[2]!, 16) === nmeaChecksum(m[1]!) ? null : `CTD checksum ${m[2]} is wrong`;
}

function values(get: (name: Name) => string | undefined): CtdParse {
  const out: CtdValues = { depthM: null, pressureDbar: null, temperatureC: null, salinity: null, todMs: null, instantMs: null };
  const read = (name: Name): number | null | 'bad' => {
    const raw = get(name)?.trim();
    if (raw === undefined || raw === '') return null;
    const v = Number(raw);
    return Number.isFinite(v) ? v : 'bad';
  };
  const slots: [Name, keyof CtdValues][] = [['depth', 'depthM'], ['pressure', 'pressureDbar'], ['temperature', 'temperatureC'], ['salinity', 'salinity']];
  for (const [name, key] of slots) {
    const v = read(name);
    if (v === 'bad') return { ok: false, reason: `CTD ${name} "${String(get(name)).slice(0, 20)}" is not a number` };
    out[key] = v;
  }
  const time = get('time')?.trim();
  if (time) {
    const tod = timeOfDay(time);
    const instant = tod === null ? Date.parse(time) : NaN;
    if (tod === null && !Number.isFinite(instant)) return { ok: false, reason: `CTD time "${time.slice(0, 30)}" is neither hhmmss nor ISO 8601` };
    out.todMs = tod;
    out.instantMs = Number.isFinite(instant) ? instant : null;
  }
  if (out.depthM === null && out.pressureDbar === null && out.temperatureC === null && out.salinity === null) return { ok: false, reason: 'CTD line without any value' };
  return { ok: true, values: out };
}
