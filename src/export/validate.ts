// `plankwatch export validate FILE.zip`: checks a Darwin Core Archive the way the OBIS and GBIF
// validators do, as far as that can be done offline: meta.xml against the files (locations, id
// columns, field indexes, known term URIs), eml.xml (title, a licence GBIF accepts, coverage,
// contact), then every row (validate-rows.ts). Taxon names are not matched against WoRMS here:
// that needs the network (the WoRMS Taxon match tool, or the OBIS/GBIF validators ashore).
import { DWC_NS, DWC_TERMS, DWC_TEXT_NS, EMOF_ROW_TYPE, EVENT_ROW_TYPE, OBIS_NS, OBIS_TERM_SET, OCCURRENCE_ROW_TYPE } from './dwc-terms.js';
import { LICENCES } from './eml.js';
import { readZip, type ZipEntries } from './unzip.js';
import { checkRows, type Problem, type TermTable } from './validate-rows.js';

export type { Problem } from './validate-rows.js';

export interface ValidationReport {
  file: string;
  /** True when there is no error (warnings allowed). */
  ok: boolean;
  errors: Problem[];
  warnings: Problem[];
  rows: Record<string, number>;
}

const ROW_TYPES = new Set([EVENT_ROW_TYPE, OCCURRENCE_ROW_TYPE, EMOF_ROW_TYPE, `${DWC_NS}MeasurementOrFact`]);
const DC_TERMS = new Set(['type', 'modified', 'language', 'license', 'rightsHolder', 'accessRights', 'bibliographicCitation', 'references']);

interface FileSpec {
  tag: 'core' | 'extension';
  rowType: string;
  location: string;
  idIndex: number | null;
  fields: { index: number | null; term: string; hasDefault: boolean }[];
  attrs: Map<string, string>;
}

function attrsOf(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of s.matchAll(/([A-Za-z_:][\w:.-]*)\s*=\s*"([^"]*)"/g)) out.set(m[1]!, m[2]!);
  return out;
}

/** The core and extensions meta.xml describes (a small reader: the archive's own layout, not any XML). */
export function parseMeta(xml: string, errors: Problem[]): { metadata: string | null; files: FileSpec[] } {
  const archive = /<archive\b([^>]*)>/.exec(xml);
  if (!archive) {
    errors.push({ file: 'meta.xml', message: 'no <archive> element' });
    return { metadata: null, files: [] };
  }
  const aa = attrsOf(archive[1]!);
  if (aa.get('xmlns') !== DWC_TEXT_NS) errors.push({ file: 'meta.xml', message: `<archive> must be in the ${DWC_TEXT_NS} namespace` });
  const files: FileSpec[] = [];
  for (const m of xml.matchAll(/<(core|extension)\b([^>]*)>([\s\S]*?)<\/\1>/g)) {
    const attrs = attrsOf(m[2]!);
    const body = m[3]!;
    const location = /<location>\s*([^<]*?)\s*<\/location>/.exec(body)?.[1] ?? '';
    const idm = new RegExp(`<${m[1] === 'core' ? 'id' : 'coreid'}\\b([^>]*)/?>`).exec(body);
    const idIndex = idm ? Number(attrsOf(idm[1]!).get('index')) : null;
    const fields = [...body.matchAll(/<field\b([^>]*)\/?>/g)].map((f) => {
      const fa = attrsOf(f[1]!);
      return { index: fa.has('index') ? Number(fa.get('index')) : null, term: fa.get('term') ?? '', hasDefault: fa.has('default') };
    });
    files.push({ tag: m[1] as 'core' | 'extension', rowType: attrs.get('rowType') ?? '', location, idIndex: idIndex !== null && Number.isInteger(idIndex) ? idIndex : null, fields, attrs });
  }
  return { metadata: aa.get('metadata') ?? null, files };
}

function termOk(uri: string): boolean {
  if (uri.startsWith(DWC_NS)) return DWC_TERMS.has(uri.slice(DWC_NS.length));
  if (uri.startsWith(OBIS_NS)) return OBIS_TERM_SET.has(uri.slice(OBIS_NS.length));
  if (uri.startsWith('http://purl.org/dc/terms/')) return DC_TERMS.has(uri.slice('http://purl.org/dc/terms/'.length));
  return false;
}

/** Reads one data file through its meta.xml description; structural problems go to `errors`. */
function readTable(zip: ZipEntries, spec: FileSpec, errors: Problem[]): TermTable | null {
  const file = spec.location;
  if (!zip.has(file)) {
    errors.push({ file: 'meta.xml', message: `names ${file}, which is not in the archive` });
    return null;
  }
  if (spec.attrs.get('fieldsTerminatedBy') !== '\\t') errors.push({ file: 'meta.xml', message: `${file}: fieldsTerminatedBy must be "\\t" (the files are tab-separated)` });
  if (spec.attrs.get('ignoreHeaderLines') !== '1') errors.push({ file: 'meta.xml', message: `${file}: ignoreHeaderLines must be 1 (the files have a header row)` });
  const lines = zip.read(file).toString('utf8').split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.at(-1) === '') lines.pop();
  const header = (lines[0] ?? '').split('\t');
  const width = header.length;
  if (spec.idIndex === null) errors.push({ file: 'meta.xml', message: `${file}: no <${spec.tag === 'core' ? 'id' : 'coreid'} index="…"/>` });
  else if (spec.idIndex >= width) errors.push({ file: 'meta.xml', message: `${file}: the id column ${spec.idIndex} is past the ${width} columns` });
  const seen = new Set<number>();
  const names: [number, string][] = [];
  for (const f of spec.fields) {
    if (!termOk(f.term)) errors.push({ file: 'meta.xml', term: f.term, message: `${file}: "${f.term}" is not a Darwin Core (or OBIS eMoF) term URI` });
    if (f.index === null) {
      if (!f.hasDefault) errors.push({ file: 'meta.xml', message: `${file}: field ${f.term} has neither an index nor a default` });
      continue;
    }
    if (!Number.isInteger(f.index) || f.index < 0 || f.index >= width) {
      errors.push({ file: 'meta.xml', message: `${file}: field ${f.term} has index ${f.index}, outside the ${width} columns` });
      continue;
    }
    if (seen.has(f.index)) errors.push({ file: 'meta.xml', message: `${file}: column ${f.index} is mapped twice` });
    seen.add(f.index);
    const local = f.term.slice(f.term.search(/[^/#]+$/));
    if (header[f.index] !== local) errors.push({ file, line: 1, term: local, message: `column ${f.index} is headed "${header[f.index]}" but meta.xml maps it to ${local}` });
    names.push([f.index, local]);
  }
  const ids: string[] = [];
  const rows: Map<string, string>[] = [];
  lines.slice(1).forEach((line, i) => {
    const cols = line.split('\t');
    if (cols.length !== width) errors.push({ file, line: i + 2, message: `${cols.length} columns where the header has ${width}` });
    ids.push(spec.idIndex === null ? '' : (cols[spec.idIndex] ?? ''));
    rows.push(new Map(names.map(([idx, name]) => [name, cols[idx] ?? ''])));
  });
  return { file, rowType: spec.rowType, core: spec.tag === 'core', ids, rows };
}

function checkEml(zip: ZipEntries, name: string, errors: Problem[], warnings: Problem[]): void {
  if (!zip.has(name)) {
    errors.push({ file: name, message: 'the metadata file meta.xml names is not in the archive' });
    return;
  }
  const xml = zip.read(name).toString('utf8');
  if (!/<eml:eml\b/.test(xml)) errors.push({ file: name, message: 'not an EML document (<eml:eml>)' });
  if (!/<title\b[^>]*>\s*[^<\s][^<]*<\/title>/.test(xml)) errors.push({ file: name, message: 'the dataset has no title' });
  const rights = /<intellectualRights>([\s\S]*?)<\/intellectualRights>/.exec(xml)?.[1] ?? '';
  const urls = Object.values(LICENCES).map((l) => l.url);
  if (!urls.some((u) => rights.includes(u) || rights.includes(u.replace('http:', 'https:')))) {
    errors.push({ file: name, message: `no licence GBIF accepts in <intellectualRights> (a <ulink url> to one of ${Object.keys(LICENCES).join(', ')})` });
  }
  if (!/<creator>/.test(xml)) errors.push({ file: name, message: 'no <creator>' });
  if (!/<contact>/.test(xml)) warnings.push({ file: name, message: 'no <contact>' });
  if (!/<geographicCoverage>/.test(xml)) warnings.push({ file: name, message: 'no geographic coverage' });
  if (!/<temporalCoverage>/.test(xml)) warnings.push({ file: name, message: 'no temporal coverage' });
  if (!/<taxonomicCoverage>/.test(xml)) warnings.push({ file: name, message: 'no taxonomic coverage' });
}

/** Validates the archive at `path`. Throws PW_E_EXPORT_INVALID only when the file is not a readable zip. */
export async function validateArchive(path: string): Promise<ValidationReport> {
  const zip = await readZip(path);
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const rowsCount: Record<string, number> = {};
  if (!zip.has('meta.xml')) {
    errors.push({ file: 'meta.xml', message: 'the archive has no meta.xml' });
    return { file: path, ok: false, errors, warnings, rows: rowsCount };
  }
  const meta = parseMeta(zip.read('meta.xml').toString('utf8'), errors);
  const cores = meta.files.filter((f) => f.tag === 'core');
  if (cores.length !== 1) errors.push({ file: 'meta.xml', message: `${cores.length} <core> elements; there must be exactly one` });
  for (const f of meta.files) if (!ROW_TYPES.has(f.rowType)) errors.push({ file: 'meta.xml', message: `${f.location}: rowType "${f.rowType}" is not an Event, Occurrence or (extended) MeasurementOrFact row type` });
  if (meta.metadata === null) warnings.push({ file: 'meta.xml', message: 'no metadata="eml.xml" attribute' });
  else checkEml(zip, meta.metadata, errors, warnings);
  const tables: TermTable[] = [];
  for (const spec of meta.files) {
    const t = readTable(zip, spec, errors);
    if (!t) continue;
    tables.push(t);
    rowsCount[t.file] = t.rows.length;
  }
  if (!tables.some((t) => t.rowType === OCCURRENCE_ROW_TYPE)) errors.push({ file: 'meta.xml', message: 'no Occurrence file: OBIS and GBIF need occurrences' });
  else if (tables.find((t) => t.rowType === OCCURRENCE_ROW_TYPE)!.rows.length === 0) errors.push({ file: 'occurrence.txt', message: 'no occurrence rows' });
  errors.push(...checkRows(tables, (n) => zip.has(n)));
  for (const t of tables.filter((x) => x.rowType === OCCURRENCE_ROW_TYPE)) {
    const without = t.rows.filter((r) => (r.get('scientificNameID') ?? '') === '').length;
    if (without > 0) warnings.push({ file: t.file, term: 'scientificNameID', message: `${without} occurrence(s) without a scientificNameID (WoRMS LSID); OBIS will match their names instead. Add the LSIDs to export.taxaFile.` });
  }
  return { file: path, ok: errors.length === 0, errors, warnings, rows: rowsCount };
}

/** One line per problem, for the command line: `error occurrence.txt:12 eventDate: …`. */
export function formatProblem(kind: 'error' | 'warning', p: Problem): string {
  return `${kind} ${p.file}${p.line !== undefined ? `:${p.line}` : ''}${p.term ? ` ${p.term}` : ''}: ${p.message}`;
}
