// Training data from an EcoTaxa export, built here as EcoTaxa writes one: per sample a folder with
// its ecotaxa_<sample>.tsv (header row, type row, one object per row naming its image) and the
// images, zipped. Real NDSB images (the committed fixtures) stand for the lab's ROIs.
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PlankwatchError } from '../../src/errors.js';
import { ZipWriter } from '../../src/export/zip.js';
import { isEcoTaxaExport, readCategoryMap, readEcoTaxaExport, type EcoTaxaFilter } from '../../src/learn/ecotaxa-data.js';
import { darkFieldColour } from '../helpers/cameras.js';
import { fixtureImages } from '../helpers/images.js';

const work = mkdtempSync(path.join(tmpdir(), 'pw-ecotaxa-'));
process.env.PLANKWATCH_CACHE_DIR = path.join(work, 'cache');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const COLUMNS = ['img_file_name', 'img_rank', 'object_id', 'object_lat', 'object_annotation_status', 'object_annotation_category', 'object_annotation_hierarchy', 'sample_id'];
const TYPES = ['[t]', '[f]', '[t]', '[f]', '[t]', '[t]', '[t]', '[t]'];
/** EcoTaxa's names for three of the fixture classes (the lab's taxonomy, not NDSB's folder names). */
const CATEGORY: Record<string, string> = { acantharia_protist: 'Acantharea', chaetognath_other: 'Chaetognatha', trichodesmium_puff: 'puff<Trichodesmium' };

interface Built {
  dir: string;
  zip: string;
  /** Objects per category that are validated. */
  validated: Record<string, number>;
}

/**
 * Two samples, each with its table and images (dark-field colour versions of the fixtures): most
 * objects validated, some predicted or dubious, one object with a second image (img_rank 1), one
 * named only by its hierarchy, and one unclassified object with no category.
 */
async function buildExport(name: string): Promise<Built> {
  const dir = path.join(work, name);
  const validated: Record<string, number> = {};
  const images = fixtureImages().filter((i) => i.label in CATEGORY);
  const samples = ['tow01', 'tow02'];
  for (const [s, sample] of samples.entries()) {
    mkdirSync(path.join(dir, sample), { recursive: true });
    const rows = [COLUMNS.join('\t'), TYPES.join('\t')];
    images.forEach((img, i) => {
      if (i % 2 !== s) return;
      const id = `${sample}_${i}`;
      const category = CATEGORY[img.label]!;
      const status = i % 9 === 0 ? 'predicted' : i % 11 === 0 ? 'dubious' : 'validated';
      if (status === 'validated') validated[category] = (validated[category] ?? 0) + 1;
      const byHierarchy = i === 4;
      rows.push([`${id}.png`, '0', id, '25.7', status, byHierarchy ? '' : category, `living>Eukaryota>${category}`, sample].join('\t'));
      if (i === 2) rows.push([`${id}_b.png`, '1', id, '25.7', status, category, `living>Eukaryota>${category}`, sample].join('\t'));
    });
    rows.push([`${sample}_unsorted.png`, '0', `${sample}_unsorted`, '25.7', '', '', '', sample].join('\t'));
    writeFileSync(path.join(dir, sample, `ecotaxa_${sample}.tsv`), rows.join('\n') + '\n');
    for (const [i, img] of images.entries()) {
      if (i % 2 !== s) continue;
      const png = await darkFieldColour(img.bytes);
      writeFileSync(path.join(dir, sample, `${sample}_${i}.png`), png);
      if (i === 2) writeFileSync(path.join(dir, sample, `${sample}_${i}_b.png`), png);
    }
    writeFileSync(path.join(dir, sample, `${sample}_unsorted.png`), await darkFieldColour(images[0]!.bytes));
  }
  const zip = path.join(work, `${name}.zip`);
  const writer = new ZipWriter(zip);
  await writer.open();
  for (const sample of samples) {
    for (const f of readdirSync(path.join(dir, sample)).sort()) writer.add(`export_42/${sample}/${f}`, readFileSync(path.join(dir, sample, f)), f.endsWith('.tsv'));
  }
  await writer.finish();
  return { dir, zip, validated };
}

const built = buildExport('export');
const filter = (f: Partial<EcoTaxaFilter> = {}): EcoTaxaFilter => ({ statuses: ['validated'], minPerClass: 1, ...f });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof PlankwatchError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('reading an EcoTaxa export', () => {
  it('is recognised as a zip, a folder or a table, and a folder per class is not', async () => {
    const { dir, zip } = await built;
    expect(isEcoTaxaExport(zip)).toBe(true);
    expect(isEcoTaxaExport(dir)).toBe(true);
    expect(isEcoTaxaExport(path.join(dir, 'tow01', 'ecotaxa_tow01.tsv'))).toBe(true);
    expect(isEcoTaxaExport(path.resolve('test/fixtures/ndsb'))).toBe(false);
  });

  it('takes validated objects only by default, labelled by category (or the hierarchy\'s last level), each object once', async () => {
    const { dir, validated } = await built;
    const { dataset, report } = await readEcoTaxaExport(dir, filter());
    expect(dataset.classes).toEqual(Object.keys(validated).sort());
    for (const c of dataset.classes) expect(dataset.items.filter((i) => i.label === c).length).toBe(validated[c]);
    expect(report.tables).toBe(2);
    expect(report.leftOut.status).toBeGreaterThan(0);
    expect(report.leftOut.duplicate).toBe(1);
    expect(report.byStatus.predicted).toBeGreaterThan(0);
    expect(report.byStatus.unclassified).toBe(2);
    expect(dataset.items.every((i) => i.rel.startsWith('tow0'))).toBe(true);
  });

  it('reads the zip as its unzipped folder: the same images, classes and fingerprint', async () => {
    const { dir, zip } = await built;
    const fromDir = (await readEcoTaxaExport(dir, filter())).dataset;
    const fromZip = (await readEcoTaxaExport(zip, filter())).dataset;
    expect(fromZip.classes).toEqual(fromDir.classes);
    expect(fromZip.items.map((i) => [i.rel.replace(/^export_42\//, ''), i.label, i.bytes])).toEqual(fromDir.items.map((i) => [i.rel, i.label, i.bytes]));
    // Unzipped once into the cache, then read from there.
    const again = (await readEcoTaxaExport(zip, filter())).dataset;
    expect(again.fingerprint).toBe(fromZip.fingerprint);
  });

  it('filters by status, renames and drops categories by a map, and leaves out small classes', async () => {
    const { dir, validated } = await built;
    const all = (await readEcoTaxaExport(dir, filter({ statuses: 'any' }))).dataset;
    const some = (await readEcoTaxaExport(dir, filter({ statuses: ['validated', 'dubious'] }))).dataset;
    const total = Object.values(validated).reduce((a, b) => a + b, 0);
    expect(all.items.length).toBeGreaterThan(some.items.length);
    expect(some.items.length).toBeGreaterThan(total);

    const mapFile = path.join(work, 'map.tsv');
    writeFileSync(mapFile, '# EcoTaxa category\tclass\nAcantharea\tacantharia\npuff<Trichodesmium\t\n');
    const map = await readCategoryMap(mapFile);
    const mapped = await readEcoTaxaExport(dir, filter({ categoryMap: map }));
    expect(mapped.dataset.classes).toEqual(['Chaetognatha', 'acantharia']);
    expect(mapped.report.leftOut.mappedOut).toBe(validated['puff<Trichodesmium']);

    const min = Math.max(...Object.values(validated));
    const big = await readEcoTaxaExport(dir, filter({ minPerClass: min }));
    expect(big.dataset.classes.every((c) => validated[c] === min)).toBe(true);
    expect(Object.keys(big.report.smallClasses).length).toBe(3 - big.dataset.classes.length);
  });

  it('refuses a missing image, a malformed map and an export with nothing left, with PW_E_ECOTAXA_DATA', async () => {
    const { dir } = await built;
    const broken = path.join(work, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(path.join(broken, 'ecotaxa_x.tsv'), 'img_file_name\tobject_id\tobject_annotation_status\tobject_annotation_category\nnot-there.png\tx1\tvalidated\tCopepoda\n');
    expect(await codeOf(readEcoTaxaExport(broken, filter()))).toBe('PW_E_ECOTAXA_DATA');
    writeFileSync(path.join(work, 'bad-map.tsv'), 'Copepoda calanoid\n');
    expect(await codeOf(readCategoryMap(path.join(work, 'bad-map.tsv')))).toBe('PW_E_ECOTAXA_DATA');
    expect(await codeOf(readEcoTaxaExport(dir, filter({ statuses: ['nonsense'] })))).toBe('PW_E_ECOTAXA_DATA');
    writeFileSync(path.join(work, 'not.zip'), 'hello');
    expect(await codeOf(readEcoTaxaExport(path.join(work, 'not.zip'), filter()))).toBe('PW_E_ECOTAXA_DATA');
  });
});
