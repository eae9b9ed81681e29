// The class-to-WoRMS mapping for Darwin Core: each plankwatch class (or a pattern of class names)
// goes to a WoRMS scientific name with its LSID, rank, kingdom and life stage, or to
// "not-an-organism" (detritus, artifacts, bubbles...), which stays out of the occurrences. A shipped
// file (config/taxa-worms.tsv, for the NDSB classes) is the default; export.taxaFile or --taxa
// points at an edited copy.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PlankwatchError } from '../errors.js';

/** A WoRMS taxon as Darwin Core names it. Empty strings: not known. */
export interface Taxon {
  scientificName: string;
  /** urn:lsid:marinespecies.org:taxname:<AphiaID>, or empty. */
  scientificNameID: string;
  taxonRank: string;
  kingdom: string;
  lifeStage: string;
}

export const NOT_AN_ORGANISM = 'not-an-organism';
export type TaxonMapping = Taxon | typeof NOT_AN_ORGANISM;

/** A WoRMS LSID: urn:lsid:marinespecies.org:taxname: and a positive AphiaID. */
export const WORMS_LSID = /^urn:lsid:marinespecies\.org:taxname:[1-9][0-9]*$/;

/** WoRMS's kingdoms (and Biota's empty one). */
export const KINGDOMS = ['Animalia', 'Plantae', 'Fungi', 'Protozoa', 'Chromista', 'Bacteria', 'Archaea', 'Viruses'] as const;

/** Where the shipped mapping is: config/taxa-worms.tsv at the package root (src/export/ and dist/export/ are both two levels down). */
export function shippedTaxaFile(): string {
  return fileURLToPath(new URL('../../config/taxa-worms.tsv', import.meta.url));
}

interface Pattern {
  prefix: string;
  suffix: string;
  mapping: TaxonMapping;
}

/** A parsed mapping file. `resolve(label)`: the exact line for the label, else the first pattern that matches. */
export class TaxaMap {
  readonly file: string;
  private readonly exact: Map<string, TaxonMapping>;
  private readonly patterns: Pattern[];

  private constructor(file: string, exact: Map<string, TaxonMapping>, patterns: Pattern[]) {
    this.file = file;
    this.exact = exact;
    this.patterns = patterns;
  }

  /** Reads `file` (empty: the shipped one). Throws PW_E_EXPORT_TAXA naming the line at fault. */
  static read(file = ''): TaxaMap {
    const path = file || shippedTaxaFile();
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new PlankwatchError('PW_E_EXPORT_TAXA', `cannot read ${path} (export.taxaFile): ${(err as Error).message}`, { cause: err });
    }
    return TaxaMap.parse(text, path);
  }

  static parse(text: string, file: string): TaxaMap {
    const exact = new Map<string, TaxonMapping>();
    const patterns: Pattern[] = [];
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '' || line.trimStart().startsWith('#')) return;
      const bad = (why: string): PlankwatchError => new PlankwatchError('PW_E_EXPORT_TAXA', `${file} line ${i + 1}: ${JSON.stringify(line)}: ${why}.`);
      const cols = line.split('\t').map((c) => c.trim());
      if (cols.length < 2) throw bad('no tab; expected label, tab, scientific name (then LSID, rank, kingdom, life stage)');
      if (cols.length > 6) throw bad(`${cols.length} columns; expected at most 6 (label, scientificName, scientificNameID, taxonRank, kingdom, lifeStage)`);
      const [label = '', name = '', id = '', rank = '', kingdom = '', lifeStage = ''] = cols;
      if (label === '') throw bad('the label is empty');
      if (name === '') throw bad('the scientific name is empty (write not-an-organism for detritus, artifacts and the like)');
      let mapping: TaxonMapping;
      if (name === NOT_AN_ORGANISM) {
        if (id || rank || kingdom || lifeStage) throw bad('a not-an-organism line takes no LSID, rank, kingdom or life stage');
        mapping = NOT_AN_ORGANISM;
      } else {
        if (id !== '' && !WORMS_LSID.test(id)) throw bad(`"${id}" is not a WoRMS LSID (urn:lsid:marinespecies.org:taxname:<AphiaID>)`);
        if (kingdom !== '' && !(KINGDOMS as readonly string[]).includes(kingdom)) throw bad(`"${kingdom}" is not a kingdom WoRMS uses (${KINGDOMS.join(', ')})`);
        mapping = { scientificName: name, scientificNameID: id, taxonRank: rank, kingdom, lifeStage };
      }
      const star = label.indexOf('*');
      if (star === -1) {
        if (exact.has(label)) throw bad(`"${label}" is mapped on an earlier line already`);
        exact.set(label, mapping);
        return;
      }
      if (label.indexOf('*', star + 1) !== -1) throw bad('one * at most in a label pattern');
      patterns.push({ prefix: label.slice(0, star), suffix: label.slice(star + 1), mapping });
    });
    return new TaxaMap(file, exact, patterns);
  }

  /** The mapping of a class name; undefined when neither a line nor a pattern covers it. */
  resolve(label: string): TaxonMapping | undefined {
    const m = this.exact.get(label);
    if (m !== undefined) return m;
    for (const p of this.patterns) {
      if (label.length >= p.prefix.length + p.suffix.length && label.startsWith(p.prefix) && label.endsWith(p.suffix)) return p.mapping;
    }
    return undefined;
  }

  /** Throws PW_E_EXPORT_TAXA naming every label the file does not cover. */
  requireAll(labels: Iterable<string>): void {
    const missing = [...new Set(labels)].filter((l) => this.resolve(l) === undefined).sort();
    if (missing.length > 0) {
      throw new PlankwatchError(
        'PW_E_EXPORT_TAXA',
        `${this.file} maps no WoRMS name for ${missing.length} class(es): ${missing.join(', ')}. Add a line for each (label, tab, scientific name or not-an-organism), or point export.taxaFile (--taxa) at a file that has them.`,
      );
    }
  }
}
