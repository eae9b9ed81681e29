// `plankwatch export ecotaxa|dwc`: zips for EcoTaxa and for OBIS/GBIF from a ship or shore database.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { readSecret } from '../config/secret.js';
import { PlankwatchError } from '../errors.js';
import { exportDwc } from '../export/dwc.js';
import { exportEcoTaxa } from '../export/ecotaxa.js';
import { ExportSource, type ExportFilter } from '../export/source.js';
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
    .description('A Darwin Core Archive: event, occurrence and extended measurement-or-fact, with meta.xml and eml.xml.')
    .option('-o, --out <file>', 'zip to write (default dwca_<time>.zip)')
    .option('--title <text>', 'dataset title in eml.xml')
    .action(async (opts: ExportOpts) => {
      const { config, source, filter, categoryMap } = await prepare(opts);
      try {
        const summary = await exportDwc({
          source,
          out: opts.out ?? `dwca_${stamp()}.zip`,
          filter,
          site: config.export,
          ...(categoryMap ? { categoryMap } : {}),
          ...(opts.title ? { title: opts.title } : {}),
        });
        process.stdout.write(`${summary.out}: ${summary.events} events, ${summary.occurrences} occurrences, ${summary.measurements} measurements\n`);
      } finally {
        await source.close();
      }
    });
}
