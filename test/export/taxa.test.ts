// The shipped class-to-WoRMS mapping covers every class a shipped member knows, every LSID has the
// WoRMS form, non-organisms are marked as such, and a malformed file is refused naming its line.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PlankwatchError } from '../../src/errors.js';
import { NOT_AN_ORGANISM, shippedTaxaFile, TaxaMap, WORMS_LSID } from '../../src/export/taxa.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Every class of every shipped member (models/<member>/<version>/meta.json). */
function shippedClasses(): Set<string> {
  const out = new Set<string>();
  const models = path.join(ROOT, 'models');
  for (const member of readdirSync(models, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const version of readdirSync(path.join(models, member.name), { withFileTypes: true }).filter((d) => d.isDirectory())) {
      const meta = path.join(models, member.name, version.name, 'meta.json');
      if (!existsSync(meta)) continue;
      const classes = (JSON.parse(readFileSync(meta, 'utf8')) as { classes?: string[] }).classes ?? [];
      for (const c of classes) out.add(c);
    }
  }
  return out;
}

describe('class-to-WoRMS mapping', () => {
  const taxa = TaxaMap.read();

  it('is the shipped config/taxa-worms.tsv by default and maps every class of every shipped member', () => {
    expect(shippedTaxaFile()).toBe(path.join(ROOT, 'config', 'taxa-worms.tsv'));
    const classes = shippedClasses();
    expect(classes.size).toBeGreaterThanOrEqual(121);
    const unmapped = [...classes].filter((c) => taxa.resolve(c) === undefined);
    expect(unmapped).toEqual([]);
    // Every NDSB class has its own line (not only a pattern).
    const text = readFileSync(shippedTaxaFile(), 'utf8');
    const exact = new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('\t')[0]!).filter((l) => !l.includes('*')));
    expect([...classes].filter((c) => !exact.has(c))).toEqual([]);
  });

  it('gives every LSID the WoRMS form, a known kingdom, and marks the non-organisms', () => {
    const text = readFileSync(shippedTaxaFile(), 'utf8');
    let lsids = 0;
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const [, name, id = '', , kingdom = ''] = line.split('\t');
      if (name === NOT_AN_ORGANISM) continue;
      if (id !== '') {
        expect(id).toMatch(WORMS_LSID);
        lsids++;
      }
      expect(['', 'Animalia', 'Chromista', 'Bacteria', 'Protozoa', 'Plantae']).toContain(kingdom);
    }
    expect(lsids).toBeGreaterThan(60);
    for (const c of ['detritus_blob', 'detritus_filamentous', 'detritus_other', 'artifacts', 'artifacts_edge', 'fecal_pellet', 'unknown_blobs_and_smudges', 'unknown_sticks', 'unknown_unclassified']) {
      expect(taxa.resolve(c)).toBe(NOT_AN_ORGANISM);
    }
    // Class names no member knows yet fall under the patterns.
    expect(taxa.resolve('detritus_new_kind')).toBe(NOT_AN_ORGANISM);
    expect(taxa.resolve('bubbles')).toBe(NOT_AN_ORGANISM);
    expect(taxa.resolve('artifacts_lens')).toBe(NOT_AN_ORGANISM);
    expect(taxa.resolve('unknown_round')).toBe(NOT_AN_ORGANISM);
    expect(taxa.resolve('made_up_class')).toBeUndefined();
  });

  it('maps the NDSB classes to the lowest rank sure, with their LSIDs', () => {
    const t = (label: string) => taxa.resolve(label);
    expect(t('chaetognath_other')).toMatchObject({ scientificName: 'Chaetognatha', scientificNameID: 'urn:lsid:marinespecies.org:taxname:2081', taxonRank: 'Phylum', kingdom: 'Animalia' });
    expect(t('copepod_calanoid_large')).toMatchObject({ scientificName: 'Calanoida', scientificNameID: 'urn:lsid:marinespecies.org:taxname:1100', taxonRank: 'Order' });
    expect(t('copepod_cyclopoid_oithona_eggs')).toMatchObject({ scientificName: 'Oithona', taxonRank: 'Genus' });
    expect(t('protist_noctiluca')).toMatchObject({ scientificName: 'Noctiluca scintillans', taxonRank: 'Species', kingdom: 'Chromista' });
    expect(t('trichodesmium_puff')).toMatchObject({ scientificName: 'Trichodesmium', kingdom: 'Bacteria' });
    expect(t('echinoderm_larva_pluteus_early')).toMatchObject({ scientificName: 'Echinodermata', lifeStage: 'larva' });
    expect(t('siphonophore_partial')).toMatchObject({ scientificName: 'Siphonophorae', scientificNameID: 'urn:lsid:marinespecies.org:taxname:1371' });
  });

  it('refuses a malformed file, naming the line', () => {
    const bad = (text: string, pattern: RegExp): void => {
      let err: unknown;
      try {
        TaxaMap.parse(text, 'my-taxa.tsv');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PlankwatchError);
      expect((err as PlankwatchError).code).toBe('PW_E_EXPORT_TAXA');
      expect((err as PlankwatchError).message).toMatch(pattern);
    };
    bad('# ok\ncopepod\n', /my-taxa\.tsv line 2: .*no tab/);
    bad('copepod\tCopepoda\turn:lsid:marinespecies.org:taxname:abc\n', /line 1: .*not a WoRMS LSID/);
    bad('copepod\tCopepoda\t\t\tAnimal\n', /not a kingdom/);
    bad('copepod\tCopepoda\ncopepod\tCalanoida\n', /line 2: .*mapped on an earlier line/);
    bad('junk\tnot-an-organism\turn:lsid:marinespecies.org:taxname:1\n', /takes no LSID/);
    bad('a*b*\tCopepoda\n', /one \* at most/);
  });

  it('lets an exact line win over a pattern, and patterns match in file order', () => {
    const m = TaxaMap.parse('detritus_copepod_moult\tCopepoda\ndetritus*\tnot-an-organism\n*_moult\tCrustacea\n', 'x.tsv');
    expect(m.resolve('detritus_copepod_moult')).toMatchObject({ scientificName: 'Copepoda' });
    expect(m.resolve('detritus_x_moult')).toBe(NOT_AN_ORGANISM);
    expect(m.resolve('krill_moult')).toMatchObject({ scientificName: 'Crustacea' });
    expect(() => m.requireAll(['krill_moult', 'squid', 'salp'])).toThrow(/2 class\(es\): salp, squid/);
  });
});
