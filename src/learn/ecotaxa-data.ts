// Labelled images from an EcoTaxa export: the zip EcoTaxa gives (or its unzipped folder), one or
// more `ecotaxa_*.tsv` tables (a header row, then an optional type row of [t]/[f]) each naming its
// images by `img_file_name`, relative to the table's folder. Each object is labelled by its
// `object_annotation_category` (or the last level of `object_annotation_hierarchy`), kept when its
// `object_annotation_status` is one of those asked for (validated by default), renamed by an
// optional category map, and its class kept when it has enough images.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { PlankwatchError } from '../errors.js';
import { fingerprint, type Dataset, type LabelledImage } from './dataset.js';
import { cacheDir } from './image-cache.js';

export interface EcoTaxaFilter {
  /** Annotation statuses kept (default: validated only); "any" keeps every object with a category. */
  statuses: string[] | 'any';
  /** EcoTaxa category → class name; a category mapped to "" is left out, one not listed keeps its name. */
  categoryMap?: Map<string, string>;
  /** Classes with fewer images are left out (default 1: none). */
  minPerClass: number;
}

export const DEFAULT_ECOTAXA_FILTER: EcoTaxaFilter = { statuses: ['validated'], minPerClass: 1 };

/** What was read and what was left out, for the log. */
export interface EcoTaxaReport {
  tables: number;
  objects: number;
  kept: number;
  byStatus: Record<string, number>;
  /** Objects left out for their status, with no category, mapped to "", or without an image. */
  leftOut: { status: number; noCategory: number; mappedOut: number; duplicate: number };
  /** Classes left out for having fewer than minPerClass images, with their counts. */
  smallClasses: Record<string, number>;
}

const TABLE = /^ecotaxa_.*\.tsv$/i;

/** True when `source` looks like an EcoTaxa export: a .zip, an ecotaxa_*.tsv, or a folder holding one (at most two levels down). */
export function isEcoTaxaExport(source: string): boolean {
  if (!existsSync(source)) return false;
  const st = statSync(source);
  if (st.isFile()) return /\.zip$/i.test(source) || TABLE.test(path.basename(source));
  return findTablesSync(source, 2).length > 0;
}

function findTablesSync(dir: string, depth: number): string[] {
  // A synchronous look for the check above: exports hold few folders.
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isFile() && TABLE.test(e.name)) out.push(path.join(dir, e.name));
    else if (e.isDirectory() && depth > 0 && !e.name.startsWith('.')) out.push(...findTablesSync(path.join(dir, e.name), depth - 1));
  }
  return out;
}

/** Every ecotaxa_*.tsv under `dir` (a table per sample, in subfolders, when EcoTaxa splits the export), sorted. */
async function findTables(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && TABLE.test(e.name)) out.push(p);
    else if (e.isDirectory() && !e.name.startsWith('.')) out.push(...(await findTables(p)));
  }
  return out.sort();
}

/** Read a category map: one `category<TAB>class` per line ("#" starts a comment; an empty class leaves the category out). */
export async function readCategoryMap(file: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  const lines = (await readFile(file, 'utf8')).split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const cells = line.split('\t');
    if (cells.length !== 2 || cells[0]!.trim() === '') throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${file} line ${i + 1}: expected "category<TAB>class" (an empty class leaves the category out), got ${JSON.stringify(line)}.`);
    map.set(cells[0]!.trim(), cells[1]!.trim());
  });
  return map;
}

/**
 * Unzip an export into the cache (once per zip: keyed by its path, size and time) and return the
 * folder. Entries that would land outside it are refused.
 */
export async function unzipExport(zip: string): Promise<string> {
  const st = await stat(zip);
  const key = createHash('sha256').update(`${path.resolve(zip)}\t${st.size}\t${st.mtimeMs}`).digest('hex').slice(0, 16);
  const dir = path.join(cacheDir(), 'ecotaxa', key);
  if (existsSync(path.join(dir, '.complete'))) return dir;
  const part = `${dir}.part`;
  await rm(part, { recursive: true, force: true });
  await mkdir(part, { recursive: true });
  let archive: yauzl.ZipFile;
  try {
    archive = await yauzl.openPromise(zip, { lazyEntries: true });
  } catch (err) {
    throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${zip} is not a readable zip: ${(err as Error).message}`, { cause: err });
  }
  try {
    for await (const entry of archive.eachEntry()) {
      const target = path.resolve(part, entry.fileName);
      if (!target.startsWith(path.resolve(part) + path.sep)) throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${zip}: entry ${JSON.stringify(entry.fileName)} points outside the export.`);
      if (entry.fileName.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(path.dirname(target), { recursive: true });
      await pipeline(await archive.openReadStreamPromise(entry), createWriteStream(target));
    }
  } catch (err) {
    if (err instanceof PlankwatchError) throw err;
    throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${zip} could not be unzipped: ${(err as Error).message}`, { cause: err });
  } finally {
    archive.close();
  }
  await writeFile(path.join(part, '.complete'), '');
  await rm(dir, { recursive: true, force: true });
  await rename(part, dir);
  return dir;
}

/** One table's rows as objects keyed by column name (the type row, when there, skipped). */
export function parseTable(text: string, where: string): Record<string, string>[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l !== '');
  if (lines.length === 0) return [];
  const header = lines[0]!.split('\t').map((h) => h.trim().toLowerCase());
  if (!header.includes('img_file_name')) throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${where}: the first row must name the columns, img_file_name among them.`);
  let rows = lines.slice(1);
  if (rows.length > 0 && rows[0]!.split('\t').every((c) => /^\[[tf]\]$/i.test(c.trim()))) rows = rows.slice(1);
  return rows.map((line) => {
    const cells = line.split('\t');
    const row: Record<string, string> = {};
    header.forEach((h, i) => (row[h] = (cells[i] ?? '').trim()));
    return row;
  });
}

/** An object's category: object_annotation_category, else the last level of object_annotation_hierarchy. */
function categoryOf(row: Record<string, string>): string {
  const c = row.object_annotation_category ?? '';
  if (c !== '') return c;
  const h = row.object_annotation_hierarchy ?? '';
  return h.split('>').pop()!.trim();
}

/**
 * Read an EcoTaxa export (a .zip, a folder, or one ecotaxa_*.tsv) as a labelled image set.
 * Image paths relative to the export root identify the images in splits, so the zip and its
 * unzipped folder give the same set.
 */
export async function readEcoTaxaExport(source: string, filter: EcoTaxaFilter = DEFAULT_ECOTAXA_FILTER): Promise<{ dataset: Dataset; report: EcoTaxaReport }> {
  const isFile = statSync(source).isFile();
  const root = isFile && /\.zip$/i.test(source) ? await unzipExport(source) : isFile ? path.dirname(source) : source;
  const tables = isFile && !/\.zip$/i.test(source) ? [source] : await findTables(root);
  if (tables.length === 0) throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${source} holds no ecotaxa_*.tsv table.`);
  const report: EcoTaxaReport = { tables: tables.length, objects: 0, kept: 0, byStatus: {}, leftOut: { status: 0, noCategory: 0, mappedOut: 0, duplicate: 0 }, smallClasses: {} };
  const statuses = filter.statuses === 'any' ? null : new Set(filter.statuses.map((s) => s.toLowerCase()));
  const seen = new Set<string>();
  const items: LabelledImage[] = [];
  for (const table of tables) {
    const rows = parseTable(await readFile(table, 'utf8'), table);
    for (const [i, row] of rows.entries()) {
      report.objects++;
      const status = (row.object_annotation_status || 'unclassified').toLowerCase();
      report.byStatus[status] = (report.byStatus[status] ?? 0) + 1;
      if (statuses && !statuses.has(status)) {
        report.leftOut.status++;
        continue;
      }
      const category = categoryOf(row);
      if (category === '') {
        report.leftOut.noCategory++;
        continue;
      }
      const label = filter.categoryMap?.get(category) ?? category;
      if (label === '') {
        report.leftOut.mappedOut++;
        continue;
      }
      const name = row.img_file_name ?? '';
      if (name === '') throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${table} row ${i + 3}: img_file_name is empty.`);
      const file = path.resolve(path.dirname(table), name);
      const rel = path.relative(root, file).split(path.sep).join('/');
      // An object exported with several images (img_rank) is taken once, by its first image.
      const id = row.object_id ? `${path.relative(root, table)}\t${row.object_id}` : rel;
      if (seen.has(id) || seen.has(rel)) {
        report.leftOut.duplicate++;
        continue;
      }
      seen.add(id);
      seen.add(rel);
      let bytes: number;
      try {
        bytes = (await stat(file)).size;
      } catch {
        throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${table} row ${i + 3}: the image ${name} is not in the export (looked for ${file}).`);
      }
      items.push({ file, rel, label, bytes });
    }
  }
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item.label, (counts.get(item.label) ?? 0) + 1);
  for (const [label, n] of counts) if (n < filter.minPerClass) report.smallClasses[label] = n;
  const kept = items.filter((i) => !(i.label in report.smallClasses));
  report.kept = kept.length;
  if (kept.length === 0) {
    throw new PlankwatchError('PW_E_ECOTAXA_DATA', `${source}: no object left out of ${report.objects} (statuses found: ${JSON.stringify(report.byStatus)}; kept: ${filter.statuses === 'any' ? 'any' : filter.statuses.join(', ')}; at least ${filter.minPerClass} images per class).`);
  }
  kept.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const classes = [...new Set(kept.map((i) => i.label))].sort();
  return { dataset: { root, items: kept, classes, fingerprint: fingerprint(kept) }, report };
}

/** One line for the log: what an export gave. */
export function describeReport(r: EcoTaxaReport): string {
  const statuses = Object.entries(r.byStatus).map(([s, n]) => `${n} ${s}`).join(', ');
  const small = Object.keys(r.smallClasses);
  const out = [
    r.leftOut.status && `${r.leftOut.status} for their status`,
    r.leftOut.noCategory && `${r.leftOut.noCategory} without a category`,
    r.leftOut.mappedOut && `${r.leftOut.mappedOut} mapped out`,
    r.leftOut.duplicate && `${r.leftOut.duplicate} further images of an object`,
    small.length && `${small.length} classes below the minimum (${small.map((c) => `${c}: ${r.smallClasses[c]}`).join(', ')})`,
  ].filter(Boolean);
  return `EcoTaxa export: ${r.tables} table(s), ${r.objects} objects (${statuses}); ${r.kept} kept${out.length ? `; left out: ${out.join('; ')}` : ''}`;
}

/** The dataset of an EcoTaxa export, with what was left out logged. */
export async function readEcoTaxaData(source: string, filter: EcoTaxaFilter | undefined, log: (line: string) => void): Promise<Dataset> {
  const { dataset, report } = await readEcoTaxaExport(source, filter ?? DEFAULT_ECOTAXA_FILTER);
  log(describeReport(report));
  return dataset;
}
