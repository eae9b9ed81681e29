// Exports from a real ship database (with the review stage's label tables) and a real shore
// database: the EcoTaxa zip (TSV with its type row, images from the archive folder) and the
// Darwin Core Archive (meta.xml, eml.xml, event, occurrence, eMoF).
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportDwc } from '../../src/export/dwc.js';
import { ECOTAXA_COLUMNS, exportEcoTaxa } from '../../src/export/ecotaxa.js';
import { ExportSource } from '../../src/export/source.js';
import { silentLogger } from '../../src/log.js';
import { SqliteShoreDriver } from '../../src/shore/sqlite.js';
import { ShoreStore } from '../../src/shore/store.js';
import { Store } from '../../src/store/store.js';
import type { SyncBatch } from '../../src/sync/records.js';
import { classified, fixtureFiles, incoming } from '../store/helpers.js';
import { tmp } from '../sync/helpers.js';
import { unzip } from './unzip.js';

const SITE = { latitude: '25.7', longitude: '-80.1', depthMinM: '5', depthMaxM: '40', cruise: 'WS1406', institution: 'OSU' };
const T0 = Date.UTC(2014, 5, 3, 22, 10, 31);

/** A ship database with the five fixtures classified and archived; one validated, one dubious. */
function shipWithArchive(): { db: string; archive: string; shas: string[] } {
  const dir = tmp('export');
  const archive = path.join(dir, 'archive');
  const db = path.join(dir, 'ship.db');
  const store = new Store({ path: db, countsWindowMs: 60_000, logger: silentLogger() });
  store.open();
  const files = fixtureFiles();
  const shas: string[] = [];
  files.forEach((f, i) => {
    const rel = `tow-1/${path.basename(f)}`;
    const inc = incoming(f, rel, T0 + i * 1000);
    shas.push(inc.sha256);
    store.recordClassified([classified(inc, i % 2 ? 'copepod_calanoid' : 'detritus_other', T0 + i * 1000)]);
    if (i < 4) {
      mkdirSync(path.join(archive, 'tow-1'), { recursive: true });
      copyFileSync(f, path.join(archive, rel)); // the fifth image was deleted: reported missing
    }
  });
  const conn = store.database;
  const label = (sha: string, status: string, lbl: string, action: string): void => {
    const ev = conn
      .prepare(`INSERT INTO label_events (sha256, action, status, label, previous_status, previous_label, user, at) VALUES (?, ?, ?, ?, 'predicted', 'x', 'anna', ?) RETURNING id`)
      .get(sha, action, status, lbl, T0 + 60_000) as { id: number };
    conn.prepare(`INSERT INTO labels (sha256, status, label, user, at, event_id) VALUES (?, ?, ?, 'anna', ?, ?)`).run(sha, status, lbl, T0 + 60_000, ev.id);
  };
  label(shas[0]!, 'validated', 'chaetognath_other', 'correct');
  label(shas[1]!, 'dubious', 'copepod_calanoid', 'dubious');
  store.close();
  return { db, archive, shas };
}

function tsv(text: string): string[][] {
  return text.trimEnd().split('\n').map((l) => l.split('\t'));
}

describe('exports', () => {
  it('EcoTaxa zip from the ship database: type row, label states, images from the archive, missing ones listed', async () => {
    const { db, archive, shas } = shipWithArchive();
    const source = ExportSource.open(db, 'isiis-1');
    expect(source.kind).toBe('ship');
    const out = path.join(tmp('export-out'), 'ecotaxa.zip');
    const summary = await exportEcoTaxa({ source, out, imageDirs: [archive], site: SITE, categoryMap: new Map([['copepod_calanoid', 'Calanoida']]) });
    source.close();
    expect(summary).toMatchObject({ objects: 4, images: 4, missingImages: 1 });
    const files = unzip(out);
    const rows = tsv(files.get('ecotaxa_plankwatch.tsv')!.toString('utf8'));
    expect(rows[0]).toEqual(ECOTAXA_COLUMNS.map(([n]) => n));
    expect(rows[1]).toEqual(ECOTAXA_COLUMNS.map(([, t]) => `[${t}]`));
    const col = (name: string): number => rows[0]!.indexOf(name);
    const bySha = new Map(rows.slice(2).map((r) => [r[col('object_sha256')]!, r]));
    const validated = bySha.get(shas[0]!)!;
    expect(validated[col('object_annotation_status')]).toBe('validated');
    expect(validated[col('object_annotation_category')]).toBe('chaetognath_other');
    expect(validated[col('object_annotation_person_name')]).toBe('anna');
    expect(validated[col('object_date')]).toBe('20140603');
    expect(validated[col('object_time')]).toBe('221031');
    expect(validated[col('object_lat')]).toBe('25.7');
    expect(validated[col('object_width')]).toBe('40');
    expect(bySha.get(shas[1]!)![col('object_annotation_status')]).toBe('dubious');
    expect(bySha.get(shas[1]!)![col('object_annotation_category')]).toBe('Calanoida');
    expect(bySha.get(shas[2]!)![col('object_annotation_status')]).toBe('predicted');
    // Every named image is in the zip, byte for byte.
    for (const r of rows.slice(2)) {
      const image = files.get(r[col('img_file_name')]!);
      expect(image).toBeDefined();
      expect(createHash('sha256').update(image!).digest('hex')).toBe(r[col('object_sha256')]);
    }
    expect(files.get('missing_images.tsv')!.toString()).toContain(shas[4]!);
  });

  it('Darwin Core Archive from the ship database: meta.xml maps every column, one occurrence per taxon and verification status, no non-organisms', async () => {
    const { db } = shipWithArchive();
    const source = ExportSource.open(db, 'isiis-1');
    const out = path.join(tmp('export-out'), 'dwca.zip');
    const summary = await exportDwc({ source, out, site: SITE, now: T0 });
    source.close();
    // detritus_other twice: counted in the event, no occurrence. Chaetognatha validated,
    // Calanoida dubious and Calanoida predicted: three occurrences, each with its count.
    expect(summary).toEqual({ out, events: 1, occurrences: 3, measurements: 1 + 3, nonOrganisms: 2, media: 0 });
    const files = unzip(out);
    expect([...files.keys()].sort()).toEqual(['eml.xml', 'event.txt', 'extendedmeasurementorfact.txt', 'meta.xml', 'occurrence.txt']);
    const meta = files.get('meta.xml')!.toString();
    expect(meta).toContain('rowType="http://rs.tdwg.org/dwc/terms/Event"');
    expect(meta).toContain('rowType="http://rs.iobis.org/obis/terms/ExtendedMeasurementOrFact"');
    const occ = tsv(files.get('occurrence.txt')!.toString());
    const header = occ[0]!;
    // meta.xml indexes match the header columns.
    for (const [i, name] of header.entries()) expect(meta).toContain(`<field index="${i}" term="http://rs.tdwg.org/dwc/terms/${name}"/>`);
    const col = (name: string): number => header.indexOf(name);
    const byId = new Map(occ.slice(1).map((r) => [r[col('occurrenceID')]!, r]));
    const event = 'WS1406_isiis-1_20140603T2200_depth-unknown';
    expect([...byId.keys()].sort()).toEqual([`${event}_Calanoida_dubious`, `${event}_Calanoida_machine`, `${event}_Chaetognatha_validated`]);
    const chaeto = byId.get(`${event}_Chaetognatha_validated`)!;
    expect(chaeto[col('identificationVerificationStatus')]).toBe('ValidatedByHuman');
    expect(chaeto[col('scientificNameID')]).toBe('urn:lsid:marinespecies.org:taxname:2081');
    expect(chaeto[col('identifiedBy')]).toBe('anna');
    const dubious = byId.get(`${event}_Calanoida_dubious`)!;
    expect(dubious[col('identificationVerificationStatus')]).toBe('PredictedByMachine');
    expect(dubious[col('identificationQualifier')]).toBe('?');
    const machine = byId.get(`${event}_Calanoida_machine`)!;
    expect(machine[col('identificationVerificationStatus')]).toBe('PredictedByMachine');
    // No volume recorded: the quantity is a count of individuals, not a concentration.
    expect([machine[col('organismQuantity')], machine[col('organismQuantityType')]]).toEqual(['1', 'individuals']);
    // No navigation: the station's position.
    expect([machine[col('decimalLatitude')], machine[col('decimalLongitude')]]).toEqual(['25.7', '-80.1']);
    for (const r of occ.slice(1)) expect(r[col('scientificName')]).not.toMatch(/detritus/);
    const ev = tsv(files.get('event.txt')!.toString());
    expect(ev[1]![0]).toBe(event);
    expect(ev[1]![1]).toBe('2014-06-03T22:00:00Z/2014-06-03T23:00:00Z');
    expect(files.get('eml.xml')!.toString()).toContain('<organizationName>OSU</organizationName>');
  });

  it('exports from a shore database, with thumbnails standing in for images', async () => {
    const dir = tmp('export-shore');
    const dbPath = path.join(dir, 'shore.db');
    const store = new ShoreStore(new SqliteShoreDriver({ path: dbPath }));
    await store.open();
    const jpeg = readFileSync(fixtureFiles()[0]!);
    const sha = createHash('sha256').update(jpeg).digest('hex');
    const batch: SyncBatch = {
      v: 1,
      instrument: 'cam-b',
      sentAt: T0,
      records: [
        { seq: 1, kind: 'prediction', key: `${sha}:e1`, at: T0, data: { sha256: sha, relPath: 'a.jpg', bytes: jpeg.length, width: 40, height: 30, area: 300, format: 'jpeg', arrivedAt: T0, classifiedAt: T0, ensembleVersion: 'e1', label: 'detritus_other', probability: 0.9, margin: 0.8, disagreement: 0, topK: [['detritus_other', 0.9]], members: [] } },
        { seq: 2, kind: 'label', key: `${sha}@${T0 + 5}`, at: T0, data: { sha256: sha, state: 'validated', label: 'detritus_other', by: 'ben', at: T0 + 5 } },
        { seq: 3, kind: 'thumbnail', key: sha, at: T0, data: { sha256: sha, relPath: 'a.jpg', state: 'validated', format: 'jpeg', width: 40, height: 30, data: jpeg.toString('base64') } },
      ],
    };
    await store.apply(batch);
    await store.close();
    const source = ExportSource.open(dbPath, 'unused');
    expect(source.kind).toBe('shore');
    const out = path.join(dir, 'eco.zip');
    const summary = await exportEcoTaxa({ source, out, imageDirs: [], site: SITE });
    source.close();
    expect(summary).toMatchObject({ objects: 1, images: 1, missingImages: 0 });
    const rows = tsv(unzip(out).get('ecotaxa_plankwatch.tsv')!.toString());
    expect(rows[2]![rows[0]!.indexOf('object_annotation_status')]).toBe('validated');
    expect(rows[2]![rows[0]!.indexOf('sample_id')]).toBe('WS1406_cam-b_20140603T2200');
    expect(rows[2]![rows[0]!.indexOf('acq_id')]).toBe('WS1406_cam-b_20140603T2200_depth-unknown');
  });
});
