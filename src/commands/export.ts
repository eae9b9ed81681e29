// `plankwatch export ecotaxa|dwc`: zips for EcoTaxa and for OBIS/GBIF from a ship or shore database.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { readSecret } from '../config/secret.js';
import { PlankwatchError } from '../errors.js';
import { exportDwc } from '../export/dwc.js';
import { exportEcoTaxa } from '../export/ecotaxa.js';
import type { Sampling } from '../export/sampling.js';
import { ExportSource, type ExportFilter } from '../export/source.js';
import { TaxaMap } from '../export/taxa.js';
import { formatProblem, validateArchive, type ValidationReport } from '../export/validate.js';
import { imageDirsFromConfig } from '../ingest/index.js';
import { configFrom } from './run.js';

interface ExportOpts {
  config?: string;
  db?: string;
  shore?: boolean;
  out?: string;
  since?: string;
  until?: string;
  instrument?: string;
  images?: string[];
  categoryMap?: string;
  title?: string;
  taxa?: string;
  json?: boolean;
}

/** Tow segments and depth bins from the config (export.eventMinutes, export.depthBinM). */
function samplingOf(config: Config): Sampling {
  return { windowMs: config.export.eventMinutes * 60_000, binM: config.export.depthBinM };
}

/** Prints a validation report; returns the exit code (0 valid, 2 errors). */
function printReport(report: ValidationReport, json: boolean): number {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.ok ? 0 : 2;
  }
  const shown = 50;
  for (const p of report.errors.slice(0, shown)) process.stdout.write(`${formatProblem('error', p)}\n`);
  if (report.errors.length > shown) process.stdout.write(`… and ${report.errors.length - shown} more error(s)\n`);
  for (const p of report.warnings.slice(0, shown)) process.stdout.write(`${formatProblem('warning', p)}\n`);
  const rows = Object.entries(report.rows).map(([f, n]) => `${f} ${n} rows`).join(', ');
  if (report.ok) process.stdout.write(`${report.file}: valid (${rows}; ${report.warnings.length} warning(s))\n`);
  else process.stderr.write(`PW_E_EXPORT_INVALID: ${report.file} fails ${report.errors.length} check(s) OBIS or GBIF would make; see the lines above.\n`);
  return report.ok ? 0 : 2;
}

function time(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new PlankwatchError('PW_E_CONFIG_INVALID', `${flag}: not a date or ISO time: "${value}"`);
  return t;
}

/**
 * Two tab-separated columns per line: plankwatch label, then the EcoTaxa category or scientific
 * name. Blank lines and lines starting with # are skipped. Throws PW_E_EXPORT_CATEGORY_MAP naming
 * the line number and content of a line that is not exactly two non-empty columns, or that maps a
 * label already mapped to another name.
 */
export function readCategoryMap(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PlankwatchError('PW_E_EXPORT_CATEGORY_MAP', `--category-map: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const map = new Map<string, string>();
  const lineOf = new Map<string, number>();
  text.split(/\r?\n/).forEach((line, i) => {
    const n = i + 1;
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const bad = (why: string): PlankwatchError =>
      new PlankwatchError('PW_E_EXPORT_CATEGORY_MAP', `--category-map ${file} line ${n}: ${JSON.stringify(line)}: ${why}.`);
    const cols = line.split('\t').map((c) => c.trim());
    if (cols.length === 1) throw bad('no tab; the label and the category must be separated by one tab');
    if (cols.length > 2) throw bad(`${cols.length} columns; expected 2 (label, tab, category)`);
    const [from, to] = cols as [string, string];
    if (from === '' || to === '') throw bad(from === '' ? 'the label is empty' : 'the category is empty');
    const earlier = map.get(from);
    if (earlier !== undefined && earlier !== to) throw bad(`"${from}" is mapped to "${earlier}" on line ${lineOf.get(from)} already`);
    map.set(from, to);
    lineOf.set(from, n);
  });
  return map;
}

/** The database `--db`, `--shore` (shore.database: sqlite or postgres) or the ship's store.path names. */
async function openSource(config: Config, opts: ExportOpts): Promise<ExportSource> {
  if (opts.db !== undefined) return ExportSource.open(opts.db, config.instrument.id);
  if (!opts.shore) return ExportSource.open(config.store.path, config.instrument.id);
  const shore = config.shore;
  if (shore.database !== 'postgres') return ExportSource.open(shore.sqlitePath, config.instrument.id);
  if (!shore.postgresUrl) {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', 'shore.database is "postgres" but shore.postgresUrl is empty: set it (postgres://user@host:5432/db), or pass --db FILE for a SQLite database.');
  }
  const password = shore.postgresPasswordFile ? readSecret(shore.postgresPasswordFile, 'shore.postgresPasswordFile') : undefined;
  return ExportSource.openPostgres({ url: shore.postgresUrl, ...(password !== undefined ? { password } : {}) });
}

async function prepare(opts: ExportOpts): Promise<{ config: Config; source: ExportSource; filter: ExportFilter; categoryMap?: Map<string, string> }> {
  const config = configFrom(opts.config);
  const filter: ExportFilter = {};
  const since = time(opts.since, '--since');
  const until = time(opts.until, '--until');
  if (since !== undefined) filter.since = since;
  if (until !== undefined) filter.until = until;
  if (opts.instrument) filter.instrument = opts.instrument;
  // The map is checked before any database is opened: a typo fails at once.
  const categoryMap = opts.categoryMap ? readCategoryMap(opts.categoryMap) : undefined;
  const source = await openSource(config, opts);
  return { config, source, filter, ...(categoryMap ? { categoryMap } : {}) };
}

function common(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'YAML config file (store.path, the shore section, ingest folders, export metadata)')
    .option('--db <file>', 'SQLite database to read: a ship database or a shore database (default: store.path)')
    .option('--shore', 'read the shore database instead of the ship database: shore.sqlitePath, or with shore.database "postgres" shore.postgresUrl (password from shore.postgresPasswordFile)')
    .option('--since <time>', 'only ROIs classified at or after this ISO time')
    .option('--until <time>', 'only ROIs classified before this ISO time')
    .option('--instrument <id>', 'shore database: only this instrument')
    .option('--category-map <file>', 'TSV: plankwatch label <TAB> EcoTaxa category / scientific name');
}

function stamp(): string {
  return new Date().toISOString().slice(0, 19).replace(/[-:]/g, '');
}

export function registerExportCommands(program: Command): void {
  const exp = program.command('export').description('Export results for EcoTaxa or as a Darwin Core Archive.');
  common(exp.command('ecotaxa'))
    .description('An EcoTaxa import zip: ecotaxa_*.tsv (with its type row) and the images.')
    .option('-o, --out <file>', 'zip to write (default ecotaxa_<time>.zip)')
    .option('--images <dir...>', 'extra folders to look for images in (by relative path), before the archive and watch folders')
    .action(async (opts: ExportOpts) => {
      const { config, source, filter, categoryMap } = await prepare(opts);
      try {
        const summary = await exportEcoTaxa({
          source,
          out: opts.out ?? `ecotaxa_${stamp()}.zip`,
          filter,
          imageDirs: imageDirsFromConfig(config.ingest, opts.images ?? []),
          site: config.export,
          sampling: samplingOf(config),
          ...(categoryMap ? { categoryMap } : {}),
        });
        process.stdout.write(`${summary.out}: ${summary.objects} objects, ${summary.images} images\n`);
        if (summary.missingImages > 0) {
          process.stderr.write(`PW_E_EXPORT_IMAGE_MISSING: ${summary.missingImages} object(s) left out because their image was not found; listed in missing_images.tsv inside the zip. Pass --images DIR to look elsewhere.\n`);
        }
      } finally {
        await source.close();
      }
    });
  common(exp.command('dwc'))
    .description('A Darwin Core Archive for OBIS and GBIF: events (tow segment and depth bin), occurrences (taxon per event, per m³), eMoF, images under media/, meta.xml and eml.xml; checked as `export validate` does.')
    .option('-o, --out <file>', 'zip to write (default dwca_<time>.zip)')
    .option('--title <text>', 'dataset title in eml.xml')
    .option('--taxa <file>', 'class-to-WoRMS mapping (default export.taxaFile, else the shipped config/taxa-worms.tsv)')
    .option('--images <dir...>', 'extra folders to look for images in (by relative path), before the archive and watch folders')
    .action(async (opts: ExportOpts) => {
      const config = configFrom(opts.config);
      // The mapping is read before any database is opened: a malformed line fails at once.
      const taxa = TaxaMap.read(opts.taxa ?? config.export.taxaFile);
      const { source, filter, categoryMap } = await prepare(opts);
      const e = config.export;
      let out: string;
      try {
        const summary = await exportDwc({
          source,
          out: opts.out ?? `dwca_${stamp()}.zip`,
          filter,
          site: e,
          taxa,
          sampling: samplingOf(config),
          dataset: { licence: e.licence, creator: { name: e.creatorName, email: e.creatorEmail }, contact: { name: e.contactName, email: e.contactEmail } },
          imageDirs: imageDirsFromConfig(config.ingest, opts.images ?? []),
          mediaPerOccurrence: e.mediaPerOccurrence,
          ...(categoryMap ? { categoryMap } : {}),
          ...(opts.title ? { title: opts.title } : {}),
        });
        out = summary.out;
        process.stdout.write(`${summary.out}: ${summary.events} events, ${summary.occurrences} occurrences, ${summary.measurements} measurements, ${summary.media} images; ${summary.nonOrganisms} non-organism ROIs left out of the occurrences\n`);
      } finally {
        await source.close();
      }
      process.exitCode = printReport(await validateArchive(out), false);
    });
  exp
    .command('validate <file>')
    .description('Check a Darwin Core Archive as the OBIS and GBIF validators do, as far as can be done offline: meta.xml, eml.xml (licence, coverage), required terms, dates, coordinates, paired terms, ids, links and associatedMedia. Exit 0 valid, 2 not.')
    .option('--json', 'the report as JSON')
    .action(async (file: string, opts: ExportOpts) => {
      process.exitCode = printReport(await validateArchive(file), opts.json === true);
    });
}
