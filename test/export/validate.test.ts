// The offline Darwin Core Archive validator catches what the OBIS and GBIF validators would refuse:
// each case breaks one thing in a valid archive (the synthetic tow's) and expects the problem named.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportDwc } from '../../src/export/dwc.js';
import { ExportSource } from '../../src/export/source.js';
import { validateArchive } from '../../src/export/validate.js';
import { ZipWriter } from '../../src/export/zip.js';
import { tmp } from '../sync/helpers.js';
import { TOW_SITE, towDatabase } from './tow.js';
import { unzip } from './unzip.js';

let valid: Map<string, Buffer>;
let dir: string;

beforeAll(async () => {
  const { db, archive } = towDatabase();
  const source = ExportSource.open(db, 'isiis-1');
  dir = tmp('validate');
  const out = path.join(dir, 'valid.zip');
  await exportDwc({ source, out, site: TOW_SITE, imageDirs: [archive], sampling: { windowMs: 3_600_000, binM: 5 } });
  await source.close();
  valid = unzip(out);
});

/** Writes the valid archive with `edit` applied to its entries (text), validates it, returns the error lines. */
async function broken(name: string, edit: (files: Map<string, string | Buffer>) => void): Promise<string[]> {
  const files = new Map<string, string | Buffer>([...valid].map(([k, v]) => [k, k.endsWith('.txt') || k.endsWith('.xml') ? v.toString('utf8') : v]));
  edit(files);
  const out = path.join(dir, `${name}.zip`);
  const zip = new ZipWriter(out);
  await zip.open();
  for (const [k, v] of files) zip.add(k, v);
  await zip.finish();
  const report = await validateArchive(out);
  expect(report.ok).toBe(false);
  return report.errors.map((e) => `${e.file}${e.line !== undefined ? `:${e.line}` : ''} ${e.term ?? ''} ${e.message}`);
}

/** Replaces one cell of a TSV entry: the first data row's `col`, or the row whose first cell is `rowId`. */
function setCell(files: Map<string, string | Buffer>, file: string, col: string, value: string, row = 1): void {
  const lines = (files.get(file) as string).split('\n');
  const header = lines[0]!.split('\t');
  const cells = lines[row]!.split('\t');
  cells[header.indexOf(col)] = value;
  lines[row] = cells.join('\t');
  files.set(file, lines.join('\n'));
}

describe('export validate', () => {
  it('passes the archive plankwatch writes', async () => {
    const out = path.join(dir, 'again.zip');
    const zip = new ZipWriter(out);
    await zip.open();
    for (const [k, v] of valid) zip.add(k, v);
    await zip.finish();
    const report = await validateArchive(out);
    expect(report.errors).toEqual([]);
  });

  it('catches broken archives, naming file, line and term', async () => {
    const cases: [string, (f: Map<string, string | Buffer>) => void, RegExp][] = [
      ['no-meta', (f) => f.delete('meta.xml'), /no meta\.xml/],
      ['missing-file', (f) => f.delete('occurrence.txt'), /names occurrence\.txt, which is not in the archive/],
      ['bad-term', (f) => f.set('meta.xml', (f.get('meta.xml') as string).replace('terms/decimalLatitude"', 'terms/decimalLatitud"')), /"http:\/\/rs\.tdwg\.org\/dwc\/terms\/decimalLatitud" is not a Darwin Core/],
      ['index-past-end', (f) => f.set('meta.xml', (f.get('meta.xml') as string).replace('<field index="2" term="http://rs.tdwg.org/dwc/terms/decimalLatitude"/>', '<field index="40" term="http://rs.tdwg.org/dwc/terms/decimalLatitude"/>')), /index 40, outside the/],
      ['non-organism', (f) => setCell(f, 'occurrence.txt', 'scientificName', 'detritus_other'), /occurrence\.txt:2 scientificName .*not a taxon/],
      ['duplicate-id', (f) => {
        const lines = (f.get('occurrence.txt') as string).split('\n');
        f.set('occurrence.txt', [...lines.slice(0, 2), lines[1]!, ...lines.slice(2)].join('\n'));
      }, /occurrence\.txt:3 occurrenceID .*not unique/],
      ['bad-date', (f) => setCell(f, 'event.txt', 'eventDate', '03/06/2014'), /event\.txt:2 eventDate .*not an ISO 8601/],
      ['impossible-date', (f) => setCell(f, 'event.txt', 'eventDate', '2014-13-03'), /not an ISO 8601/],
      ['latitude', (f) => setCell(f, 'occurrence.txt', 'decimalLatitude', '95'), /decimalLatitude "95" is not a number in \[-90, 90\]/],
      ['no-coordinates', (f) => {
        setCell(f, 'occurrence.txt', 'decimalLatitude', '');
        setCell(f, 'occurrence.txt', 'decimalLongitude', '');
        const ev = (f.get('occurrence.txt') as string).split('\n')[1]!.split('\t')[0]!;
        const lines = (f.get('event.txt') as string).split('\n');
        const row = lines.findIndex((l) => l.startsWith(`${ev}\t`));
        setCell(f, 'event.txt', 'decimalLatitude', '', row);
        setCell(f, 'event.txt', 'decimalLongitude', '', row);
      }, /no decimalLatitude\/decimalLongitude on the occurrence or its event/],
      ['quantity-pair', (f) => setCell(f, 'occurrence.txt', 'organismQuantityType', ''), /organismQuantity and organismQuantityType go together/],
      ['sample-size-pair', (f) => setCell(f, 'event.txt', 'sampleSizeUnit', ''), /sampleSizeValue and sampleSizeUnit go together/],
      ['orphan', (f) => setCell(f, 'occurrence.txt', 'eventID', 'no-such-event'), /points at core id "no-such-event".*orphan/],
      ['media', (f) => setCell(f, 'occurrence.txt', 'associatedMedia', 'media/gone.jpg'), /associatedMedia "media\/gone\.jpg" is neither a URL nor a file inside the archive/],
      ['basis', (f) => setCell(f, 'occurrence.txt', 'basisOfRecord', 'Machine'), /basisOfRecord "Machine" is not one of/],
      ['status', (f) => setCell(f, 'occurrence.txt', 'occurrenceStatus', 'seen'), /occurrenceStatus "seen"/],
      ['lsid', (f) => setCell(f, 'occurrence.txt', 'scientificNameID', 'urn:lsid:marinespecies.org:taxname:x1'), /not a WoRMS LSID/],
      ['columns', (f) => f.set('event.txt', `${f.get('event.txt') as string}extra\trow\n`), /event\.txt:\d+ +2 columns where the header has 13/],
      ['emof-link', (f) => {
        const lines = (f.get('extendedmeasurementorfact.txt') as string).split('\n');
        const row = lines.findIndex((l) => l.split('\t')[1] !== '' && l.split('\t')[1] !== 'occurrenceID');
        setCell(f, 'extendedmeasurementorfact.txt', 'occurrenceID', 'nobody', row);
      }, /occurrenceID "nobody" is not an occurrence in the archive/],
      ['licence', (f) => f.set('eml.xml', (f.get('eml.xml') as string).replace(/<intellectualRights>[\s\S]*<\/intellectualRights>/, '')), /no licence GBIF accepts/],
      ['header', (f) => f.set('event.txt', (f.get('event.txt') as string).replace('decimalLongitude', 'lon')), /column 3 is headed "lon" but meta\.xml maps it to decimalLongitude/],
    ];
    for (const [name, edit, expected] of cases) {
      const errors = await broken(name, edit);
      expect(errors.join('\n'), name).toMatch(expected);
    }
  });
});
