// Exports of a synthetic tow with known positions, depths and sampled volumes (tow.ts): each
// object's own position and depth in EcoTaxa, the station's where it has none (and the file says
// so), sample and acquisition volumes; Darwin Core events per tow segment and depth bin with their
// volume, occurrences per m³, exact; no non-organism occurrences; LSIDs; eml licence and coverage;
// associatedMedia inside the archive; and the archive passes the offline validator.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportDwc } from '../../src/export/dwc.js';
import { longitudeRange } from '../../src/export/eml.js';
import { exportEcoTaxa } from '../../src/export/ecotaxa.js';
import { ExportSource } from '../../src/export/source.js';
import { validateArchive } from '../../src/export/validate.js';
import { tmp } from '../sync/helpers.js';
import { TOW_SITE, towDatabase } from './tow.js';
import { unzip } from './unzip.js';

const SAMPLING = { windowMs: 3_600_000, binM: 5 };

function table(text: string): { rows: string[][]; get: (row: string[], col: string) => string } {
  const rows = text.trimEnd().split('\n').map((l) => l.split('\t'));
  const header = rows[0]!;
  return { rows: rows.slice(1), get: (row, col) => row[header.indexOf(col)]! };
}

describe('exports of a tow with positions, depths and volumes', () => {
  it('EcoTaxa: each object at its own position and depth, the station where it has none, and the volumes sampled', async () => {
    const { db, archive, shas } = towDatabase();
    const source = ExportSource.open(db, 'isiis-1');
    const out = path.join(tmp('tow-eco'), 'ecotaxa.zip');
    const summary = await exportEcoTaxa({ source, out, imageDirs: [archive], site: TOW_SITE, sampling: SAMPLING });
    await source.close();
    expect(summary).toMatchObject({ objects: 5, images: 5, missingImages: 0 });
    const t = table(unzip(out).get('ecotaxa_plankwatch.tsv')!.toString());
    const rows = t.rows.slice(1); // the type row
    const bySha = new Map(rows.map((r) => [t.get(r, 'object_sha256'), r]));
    const row = (i: number): string[] => bySha.get(shas[i]!)!;
    const fields = (i: number, ...cols: string[]): string[] => cols.map((c) => t.get(row(i), c));
    const where = ['object_lat', 'object_lon', 'object_depth_min', 'object_depth_max', 'object_position_source', 'object_depth_source'];
    expect(fields(0, ...where)).toEqual(['25.7', '-80.1', '7', '7', 'interpolated', 'interpolated']);
    expect(fields(3, ...where)).toEqual(['25.8', '-80.2', '12', '12', 'held', 'held']);
    expect(fields(4, ...where)).toEqual(['26', '-79.5', '0', '100', 'station', 'station']);
    expect(fields(0, 'object_date', 'object_time', 'object_temperature', 'object_salinity')).toEqual(['20140603', '220010', '24.5', '36.1']);
    // The tow segment 22:00-23:00 sampled 0.25 + 0.25 + 0.5 + 0.125 m³ at every depth; its 5-10 m bin 0.5.
    expect(fields(0, 'sample_id', 'sample_tot_vol', 'acq_id', 'acq_tot_vol')).toEqual(['WS1406_isiis-1_20140603T2200', '1.125', 'WS1406_isiis-1_20140603T2200_5-10m', '0.5']);
    expect(fields(3, 'acq_id', 'acq_tot_vol')).toEqual(['WS1406_isiis-1_20140603T2200_10-15m', '0.5']);
    expect(fields(4, 'acq_id', 'acq_tot_vol')).toEqual(['WS1406_isiis-1_20140603T2200_depth-unknown', '0.125']);
    // Non-organisms stay in EcoTaxa.
    expect(t.get(row(2), 'object_annotation_category')).toBe('detritus_other');
  });

  it('Darwin Core: events per segment and depth bin with their volume, occurrences per m³, no non-organisms, media inside, valid', async () => {
    const { db, archive } = towDatabase();
    const source = ExportSource.open(db, 'isiis-1');
    const out = path.join(tmp('tow-dwc'), 'dwca.zip');
    const summary = await exportDwc({
      source, out, site: TOW_SITE, sampling: SAMPLING, imageDirs: [archive], mediaPerOccurrence: 5, now: Date.UTC(2026, 0, 1),
      dataset: { licence: 'CC0-1.0', creator: { name: 'Ana Maria Silva', email: 'ana@example.org' }, contact: { name: '', email: '' } },
    });
    await source.close();
    expect(summary).toMatchObject({ events: 3, occurrences: 3, nonOrganisms: 1, media: 4 });
    const files = unzip(out);

    const ev = table(files.get('event.txt')!.toString());
    const event = (id: string): string[] => ev.rows.find((r) => r[0] === id)!;
    const e510 = event('WS1406_isiis-1_20140603T2200_5-10m');
    expect(['decimalLatitude', 'decimalLongitude', 'minimumDepthInMeters', 'maximumDepthInMeters', 'sampleSizeValue', 'sampleSizeUnit'].map((c) => ev.get(e510, c)))
      .toEqual(['25.71', '-80.11', '5', '10', '0.5', 'cubic metre']);
    expect(ev.get(e510, 'eventDate')).toBe('2014-06-03T22:00:00Z/2014-06-03T23:00:00Z');
    expect(ev.get(event('WS1406_isiis-1_20140603T2200_10-15m'), 'sampleSizeValue')).toBe('0.5');
    const unknown = event('WS1406_isiis-1_20140603T2200_depth-unknown');
    expect([ev.get(unknown, 'decimalLatitude'), ev.get(unknown, 'sampleSizeValue'), ev.get(unknown, 'minimumDepthInMeters'), ev.get(unknown, 'maximumDepthInMeters')]).toEqual(['26', '0.125', '0', '100']);
    expect(ev.get(unknown, 'georeferenceRemarks')).toMatch(/fixed station/);

    const occ = table(files.get('occurrence.txt')!.toString());
    const o = (id: string): string[] => occ.rows.find((r) => occ.get(r, 'occurrenceID') === id)!;
    const calanoida = o('WS1406_isiis-1_20140603T2200_5-10m_Calanoida_machine');
    // 2 calanoids in 0.5 m³: 4 individuals per m³, at their own mean position and depth range.
    expect(['scientificName', 'scientificNameID', 'taxonRank', 'kingdom', 'individualCount', 'organismQuantity', 'organismQuantityType', 'decimalLatitude', 'decimalLongitude', 'minimumDepthInMeters', 'maximumDepthInMeters', 'eventDate']
      .map((c) => occ.get(calanoida, c)))
      .toEqual(['Calanoida', 'urn:lsid:marinespecies.org:taxname:1100', 'Order', 'Animalia', '2', '4', 'individuals per cubic metre', '25.71', '-80.11', '7', '8', '2014-06-03T22:00:10Z/2014-06-03T22:00:20Z']);
    const chaeto = o('WS1406_isiis-1_20140603T2200_10-15m_Chaetognatha_machine');
    expect([occ.get(chaeto, 'organismQuantity'), occ.get(chaeto, 'scientificNameID')]).toEqual(['2', 'urn:lsid:marinespecies.org:taxname:2081']);
    expect(occ.get(o('WS1406_isiis-1_20140603T2200_depth-unknown_Calanoida_machine'), 'organismQuantity')).toBe('8');
    // No non-organism occurrence, every occurrence has an LSID here, and every medium is in the zip.
    for (const r of occ.rows) {
      expect(occ.get(r, 'scientificName')).not.toMatch(/detritus|artifact|unknown|fecal/i);
      expect(occ.get(r, 'scientificNameID')).toMatch(/^urn:lsid:marinespecies\.org:taxname:\d+$/);
      expect(occ.get(r, 'basisOfRecord')).toBe('MachineObservation');
      for (const m of occ.get(r, 'associatedMedia').split(' | ')) expect(files.has(m)).toBe(true);
    }
    expect(occ.get(calanoida, 'associatedMedia').split(' | ')).toHaveLength(2);

    const emof = table(files.get('extendedmeasurementorfact.txt')!.toString());
    const perM3 = emof.rows.find((r) => emof.get(r, 'measurementID') === 'WS1406_isiis-1_20140603T2200_5-10m_Calanoida_machine_per_m3')!;
    expect([emof.get(perM3, 'measurementValue'), emof.get(perM3, 'measurementTypeID'), emof.get(perM3, 'measurementUnitID')])
      .toEqual(['4', 'http://vocab.nerc.ac.uk/collection/P01/current/SDBIOL01/', 'http://vocab.nerc.ac.uk/collection/P06/current/UPMM/']);

    const eml = files.get('eml.xml')!.toString();
    expect(eml).toContain('<ulink url="http://creativecommons.org/publicdomain/zero/1.0/legalcode">');
    expect(eml).toContain('<westBoundingCoordinate>-80.2</westBoundingCoordinate>');
    expect(eml).toContain('<eastBoundingCoordinate>-79.5</eastBoundingCoordinate>');
    expect(eml).toContain('<northBoundingCoordinate>26</northBoundingCoordinate>');
    expect(eml).toContain('<southBoundingCoordinate>25.71</southBoundingCoordinate>');
    expect(eml).toContain('<beginDate><calendarDate>2014-06-03</calendarDate></beginDate>');
    expect(eml).toContain('<taxonRankName>Phylum</taxonRankName><taxonRankValue>Chaetognatha</taxonRankValue>');
    expect(eml).toContain('<givenName>Ana Maria</givenName><surName>Silva</surName>');

    const report = await validateArchive(out);
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.rows).toEqual({ 'event.txt': 3, 'occurrence.txt': 3, 'extendedmeasurementorfact.txt': emof.rows.length });
  });

  it('bounds longitudes across 180° the short way', () => {
    expect(longitudeRange([179.5, -179.8, 179.9])).toEqual([179.5, -179.8]);
    expect(longitudeRange([-80.2, -79.5, -80.11])).toEqual([-80.2, -79.5]);
  });
});
