// The checks a Darwin Core Archive's rows must pass, as the OBIS and GBIF validators make them (as
// far as they can be made without a network): required terms, vocabularies, ISO 8601 dates,
// coordinate ranges, paired terms (organismQuantity/Type, sampleSizeValue/Unit), unique ids, and
// that every extension row points at a core row and every occurrenceID in the eMoF at an occurrence.
import { WORMS_LSID } from './taxa.js';

export interface Problem {
  file: string;
  /** 1-based line in the file (the header is line 1); absent for a file-wide problem. */
  line?: number;
  term?: string;
  message: string;
}

/** A data file read through meta.xml: each row as term name → value. */
export interface TermTable {
  file: string;
  rowType: string;
  core: boolean;
  /** Values of the id (core) or coreid (extension) column. */
  ids: string[];
  rows: Map<string, string>[];
}

export const BASIS_OF_RECORD = new Set(['HumanObservation', 'MachineObservation', 'PreservedSpecimen', 'LivingSpecimen', 'FossilSpecimen', 'MaterialSample', 'MaterialCitation', 'Occurrence']);
const OCCURRENCE_STATUS = new Set(['present', 'absent']);
/** Class names of things that are not organisms: they must not be occurrences. */
const NOT_A_TAXON = /^(detritus|artifacts?|bubbles?|fecal|faecal|unknown|marine[ _-]?snow)([\s_-]|$)/i;

const DATE = String.raw`\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?)?)?`;
const ISO_8601 = new RegExp(`^${DATE}(/${DATE})?$`);

/** An ISO 8601 date, date-time or interval whose parts are real dates. */
export function isIsoDate(v: string): boolean {
  if (!ISO_8601.test(v)) return false;
  return v.split('/').every((part) => {
    const m = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?/.exec(part)!;
    const month = m[2] === undefined ? 1 : Number(m[2]);
    const day = m[3] === undefined ? 1 : Number(m[3]);
    if (month < 1 || month > 12 || day < 1 || day > 31) return false;
    return part.length <= 10 || !Number.isNaN(Date.parse(part.length === 13 ? `${part}:00` : part));
  });
}

function isNumber(v: string): boolean {
  return v.trim() !== '' && Number.isFinite(Number(v));
}

/** Checks the rows of every table; `has(name)` says whether the archive holds a file (associatedMedia). */
export function checkRows(tables: TermTable[], has: (name: string) => boolean): Problem[] {
  const out: Problem[] = [];
  const core = tables.find((t) => t.core);
  if (!core) return out;
  const coreIds = new Map<string, number>();
  core.ids.forEach((id, i) => {
    const line = i + 2;
    if (id === '') out.push({ file: core.file, line, message: 'the core id is empty' });
    else if (coreIds.has(id)) out.push({ file: core.file, line, message: `the core id "${id}" is used again (first on line ${coreIds.get(id)})` });
    else coreIds.set(id, line);
  });
  const coreRows = new Map<string, Map<string, string>>();
  core.ids.forEach((id, i) => coreRows.set(id, core.rows[i]!));
  const occurrenceEvent = new Map<string, string>();
  for (const t of tables) {
    if (!t.core) {
      t.ids.forEach((id, i) => {
        if (!coreIds.has(id)) out.push({ file: t.file, line: i + 2, message: `points at core id "${id}", which ${core.file} does not hold (an orphan row)` });
      });
    }
    if (t.rowType.endsWith('/Event')) checkEvents(t, out);
    if (t.rowType.endsWith('/Occurrence')) checkOccurrences(t, t.core ? undefined : coreRows, has, out, occurrenceEvent);
  }
  for (const t of tables) if (t.rowType.endsWith('MeasurementOrFact')) checkMeasurements(t, occurrenceEvent, out);
  return out;
}

function checkEvents(t: TermTable, out: Problem[]): void {
  const seen = new Set<string>();
  t.rows.forEach((r, i) => {
    const line = i + 2;
    const p = (term: string, message: string): void => void out.push({ file: t.file, line, term, message });
    const id = r.get('eventID');
    if (id !== undefined) {
      if (id === '') p('eventID', 'eventID is empty');
      else if (seen.has(id)) p('eventID', `eventID "${id}" is not unique`);
      seen.add(id ?? '');
    }
    const date = r.get('eventDate') ?? '';
    if (date === '') p('eventDate', 'eventDate is empty (OBIS requires it)');
    else if (!isIsoDate(date)) p('eventDate', `eventDate "${date}" is not an ISO 8601 date, date-time or interval`);
    checkCoordinates(r, p, false);
    checkDepths(r, p);
    checkPair(r, 'sampleSizeValue', 'sampleSizeUnit', p);
    const size = r.get('sampleSizeValue') ?? '';
    if (size !== '' && (!isNumber(size) || Number(size) <= 0)) p('sampleSizeValue', `sampleSizeValue "${size}" is not a positive number`);
  });
}

function checkOccurrences(t: TermTable, events: Map<string, Map<string, string>> | undefined, has: (name: string) => boolean, out: Problem[], occurrenceEvent: Map<string, string>): void {
  t.rows.forEach((r, i) => {
    const line = i + 2;
    const p = (term: string, message: string): void => void out.push({ file: t.file, line, term, message });
    const ev = events?.get(t.ids[i] ?? '');
    /** The occurrence's value, or its event's (OBIS and GBIF read the two together). */
    const get = (term: string): string => {
      const own = r.get(term) ?? '';
      return own !== '' ? own : (ev?.get(term) ?? '');
    };
    const id = r.get('occurrenceID') ?? '';
    if (id === '') p('occurrenceID', 'occurrenceID is missing or empty (OBIS and GBIF require it)');
    else if (occurrenceEvent.has(id)) p('occurrenceID', `occurrenceID "${id}" is not unique`);
    else occurrenceEvent.set(id, t.ids[i] ?? '');
    const basis = r.get('basisOfRecord') ?? '';
    if (!BASIS_OF_RECORD.has(basis)) p('basisOfRecord', `basisOfRecord "${basis}" is not one of ${[...BASIS_OF_RECORD].join(', ')}`);
    const name = r.get('scientificName') ?? '';
    if (name === '') p('scientificName', 'scientificName is missing or empty');
    else if (NOT_A_TAXON.test(name)) p('scientificName', `scientificName "${name}" is not a taxon (non-organisms must not be occurrences)`);
    const nameId = r.get('scientificNameID') ?? '';
    if (nameId !== '' && nameId.includes('marinespecies') && !WORMS_LSID.test(nameId)) p('scientificNameID', `scientificNameID "${nameId}" is not a WoRMS LSID (urn:lsid:marinespecies.org:taxname:<AphiaID>)`);
    const status = r.get('occurrenceStatus') ?? '';
    if (!OCCURRENCE_STATUS.has(status)) p('occurrenceStatus', `occurrenceStatus "${status}" is not "present" or "absent"`);
    const date = get('eventDate');
    if (date === '') p('eventDate', 'no eventDate on the occurrence or its event');
    else if (!isIsoDate(date)) p('eventDate', `eventDate "${date}" is not an ISO 8601 date, date-time or interval`);
    checkCoordinates(new Map([['decimalLatitude', get('decimalLatitude')], ['decimalLongitude', get('decimalLongitude')]]), p, true);
    checkDepths(r, p);
    checkPair(r, 'organismQuantity', 'organismQuantityType', p);
    const q = r.get('organismQuantity') ?? '';
    if (q !== '' && /individual/i.test(r.get('organismQuantityType') ?? '') && (!isNumber(q) || Number(q) < 0)) p('organismQuantity', `organismQuantity "${q}" is not a number of individuals`);
    const count = r.get('individualCount') ?? '';
    if (count !== '' && !/^\d+$/.test(count)) p('individualCount', `individualCount "${count}" is not a whole number`);
    for (const m of (r.get('associatedMedia') ?? '').split('|').map((s) => s.trim()).filter(Boolean)) {
      if (/^https?:\/\//i.test(m)) continue;
      if (!has(m)) p('associatedMedia', `associatedMedia "${m}" is neither a URL nor a file inside the archive`);
    }
  });
}

function checkMeasurements(t: TermTable, occurrenceEvent: Map<string, string>, out: Problem[]): void {
  t.rows.forEach((r, i) => {
    const line = i + 2;
    const p = (term: string, message: string): void => void out.push({ file: t.file, line, term, message });
    const occ = r.get('occurrenceID') ?? '';
    if (occ !== '') {
      const ev = occurrenceEvent.get(occ);
      if (ev === undefined) p('occurrenceID', `occurrenceID "${occ}" is not an occurrence in the archive`);
      else if (t.ids[i] !== undefined && ev !== t.ids[i]) p('occurrenceID', `occurrenceID "${occ}" belongs to event "${ev}", not "${t.ids[i]}"`);
    }
    if ((r.get('measurementType') ?? '') === '') p('measurementType', 'measurementType is empty');
    if ((r.get('measurementValue') ?? '') === '') p('measurementValue', 'measurementValue is empty');
  });
}

function checkPair(r: Map<string, string>, a: string, b: string, p: (term: string, message: string) => void): void {
  const va = r.get(a) ?? '';
  const vb = r.get(b) ?? '';
  if ((va === '') !== (vb === '')) p(va === '' ? a : b, `${a} and ${b} go together: one is given without the other`);
}

function checkCoordinates(r: Map<string, string>, p: (term: string, message: string) => void, required: boolean): void {
  const lat = r.get('decimalLatitude') ?? '';
  const lon = r.get('decimalLongitude') ?? '';
  if (lat === '' && lon === '') {
    if (required) p('decimalLatitude', 'no decimalLatitude/decimalLongitude on the occurrence or its event (OBIS requires coordinates)');
    return;
  }
  if (lat === '' || lon === '') p(lat === '' ? 'decimalLatitude' : 'decimalLongitude', 'decimalLatitude and decimalLongitude go together: one is missing');
  if (lat !== '' && (!isNumber(lat) || Math.abs(Number(lat)) > 90)) p('decimalLatitude', `decimalLatitude "${lat}" is not a number in [-90, 90]`);
  if (lon !== '' && (!isNumber(lon) || Math.abs(Number(lon)) > 180)) p('decimalLongitude', `decimalLongitude "${lon}" is not a number in [-180, 180]`);
}

function checkDepths(r: Map<string, string>, p: (term: string, message: string) => void): void {
  const min = r.get('minimumDepthInMeters') ?? '';
  const max = r.get('maximumDepthInMeters') ?? '';
  if (min !== '' && !isNumber(min)) p('minimumDepthInMeters', `minimumDepthInMeters "${min}" is not a number`);
  if (max !== '' && !isNumber(max)) p('maximumDepthInMeters', `maximumDepthInMeters "${max}" is not a number`);
  if (isNumber(min) && isNumber(max) && Number(min) > Number(max)) p('minimumDepthInMeters', `minimumDepthInMeters ${min} is deeper than maximumDepthInMeters ${max}`);
}
