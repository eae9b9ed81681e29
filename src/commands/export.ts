// `plankwatch export ecotaxa|dwc`: zips for EcoTaxa and for OBIS/GBIF from a ship or shore database.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { PlankwatchError } from '../errors.js';
import { exportDwc } from '../export/dwc.js';
import { exportEcoTaxa } from '../export/ecotaxa.js';
import { imageDirsFromConfig } from '../export/images.js';
import { ExportSource, type ExportFilter } from '../export/source.js';
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

/** Two tab-separated columns per line: plankwatch label, then the EcoTaxa category or scientific name. */
export function readCategoryMap(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `--category-map: cannot read ${file}`, { cause: err });
  }
  const map = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const [from, to] = line.split('\t');
    if (from && to && !line.startsWith('#')) map.set(from.trim(), to.trim());
  }
  return map;
}

function prepare(opts: ExportOpts): { config: Config; source: ExportSource; filter: ExportFilter; categoryMap?: Map<string, string> } {
  const config = configFrom(opts.config);
  const db = opts.db ?? (opts.shore ? config.shore.sqlitePath : config.store.path);
  const source = ExportSource.open(db, config.instrument.id);
  const filter: ExportFilter = {};
  const since = time(opts.since, '--since');
  const until = time(opts.until, '--until');
  if (since !== undefined) filter.since = since;
  if (until !== undefined) filter.until = until;
  if (opts.instrument) filter.instrument = opts.instrument;
  return { config, source, filter, ...(opts.categoryMap ? { categoryMap: readCategoryMap(opts.categoryMap) } : {}) };
}

function common(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'YAML config file (store.path, shore.sqlitePath, ingest folders, export metadata)')
    .option('--db <file>', 'SQLite database to read: a ship database or a shore database (default: store.path)')
    .option('--shore', 'read the shore database (shore.sqlitePath) instead of the ship database')
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
      const { config, source, filter, categoryMap } = prepare(opts);
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
        source.close();
      }
    });
  common(exp.command('dwc'))
    .description('A Darwin Core Archive: event, occurrence and extended measurement-or-fact, with meta.xml and eml.xml.')
    .option('-o, --out <file>', 'zip to write (default dwca_<time>.zip)')
    .option('--title <text>', 'dataset title in eml.xml')
    .action(async (opts: ExportOpts) => {
      const { config, source, filter, categoryMap } = prepare(opts);
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
        source.close();
      }
    });
}
