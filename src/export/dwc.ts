// Darwin Core Archive for OBIS and GBIF, following the OBIS guidance for plankton imaging data
// (Martin-Cabrera et al. 2022): an Event core with one event per tow segment and depth bin, its
// sampled volume in sampleSizeValue (m³); an Occurrence extension with one occurrence per taxon,
// event and verification status (PredictedByMachine, ValidatedByHuman), organismQuantity in
// individuals per cubic metre, its own mean position and depth range, and example images under
// media/ named in associatedMedia; an ExtendedMeasurementOrFact extension with the count and the
// abundance per m³ (NERC P01/P06 terms) and the volume sampled per event. Classes mapped to
// not-an-organism (export.taxaFile) are counted in the event but give no occurrence.
import { extname } from 'node:path';
import { PlankwatchError } from '../errors.js';
import { readFrameImage } from '../ingest/index.js';
import { EMOF_FIELDS, EVENT_FIELDS, metaXml, NERC, OCCURRENCE_FIELDS } from './dwc-terms.js';
import { objectId, tsvCell } from './ecotaxa.js';
import { emlXml, longitudeRange, type Licence, type Person } from './eml.js';
import { binRange, DEFAULT_SAMPLING, eventId, keyString, MeanPosition, place, sampleKeyOf, VolumeTable, type SampleKey, type Sampling, type SiteMetadata } from './sampling.js';
import { describeFilter, type ExportFilter, type ExportObject, type ExportSource } from './source.js';
import { NOT_AN_ORGANISM, TaxaMap, type Taxon } from './taxa.js';
import { ZipWriter } from './zip.js';

export { metaXml, EVENT_FIELDS, OCCURRENCE_FIELDS, EMOF_FIELDS } from './dwc-terms.js';

export interface DwcDataset {
  licence: Licence;
  creator: Person;
  contact: Person;
}

export interface DwcOptions {
  source: ExportSource;
  out: string;
  filter?: ExportFilter;
  site: SiteMetadata;
  /** plankwatch label → another class name, applied before the taxa mapping. */
  categoryMap?: Map<string, string>;
  /** Class → WoRMS mapping; default the shipped config/taxa-worms.tsv. */
  taxa?: TaxaMap;
  sampling?: Sampling;
  dataset?: DwcDataset;
  /** Folders where images are looked up for media/ (a shore database also has thumbnails). */
  imageDirs?: string[];
  /** Images per occurrence put under media/ (default 5; 0: none). */
  mediaPerOccurrence?: number;
  /** Dataset title in eml.xml. */
  title?: string;
  now?: number;
}

export interface DwcSummary {
  out: string;
  events: number;
  occurrences: number;
  measurements: number;
  /** ROIs of classes mapped to not-an-organism: counted in their events, no occurrence. */
  nonOrganisms: number;
  /** Images written under media/. */
  media: number;
}

/** identificationVerificationStatus as the OBIS imaging guidance words it; dubious also gets identificationQualifier "?". */
export const VERIFICATION_STATUS = {
  predicted: 'PredictedByMachine',
  validated: 'ValidatedByHuman',
  dubious: 'PredictedByMachine',
} as const;

const PROTOCOL = 'in situ imaging along the tow; regions of interest classified by a convolutional-network ensemble (plankwatch)';

interface EventAcc {
  key: SampleKey;
  id: string;
  rois: number;
  pos: MeanPosition;
  depthMin: number | null;
  depthMax: number | null;
  station: boolean;
}

interface OccAcc {
  event: EventAcc;
  taxon: Taxon;
  state: ExportObject['state'];
  labels: Set<string>;
  count: number;
  pos: MeanPosition;
  depthMin: number | null;
  depthMax: number | null;
  first: number;
  last: number;
  people: Set<string>;
  identifiedAt: number;
  versions: Set<string>;
  media: ExportObject[];
}

function minOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}
function maxOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}

/** A number for a TSV cell without float noise (12 significant digits). */
export function clean(x: number): number {
  return Number(x.toPrecision(12));
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/**
 * Writes the archive and returns what it holds. Throws PW_E_EXPORT_EMPTY when no ROI matches the
 * filter, PW_E_EXPORT_TAXA when the mapping lacks a class, writing nothing either way.
 */
export async function exportDwc(options: DwcOptions): Promise<DwcSummary> {
  const site = options.site;
  const sampling = options.sampling ?? DEFAULT_SAMPLING;
  const taxa = options.taxa ?? TaxaMap.read();
  const mediaMax = options.mediaPerOccurrence ?? 5;
  const events = new Map<string, EventAcc>();
  const occs = new Map<string, OccAcc>();
  const unmapped = new Set<string>();
  let rois = 0;
  let nonOrganisms = 0;
  let firstAt = Number.MAX_SAFE_INTEGER;
  let lastAt = 0;
  for await (const o of options.source.objects(options.filter)) {
    rois++;
    firstAt = Math.min(firstAt, o.capturedAt);
    lastAt = Math.max(lastAt, o.capturedAt);
    const key = sampleKeyOf(o, sampling);
    const ks = keyString(key);
    const at = place(o, site);
    let ev = events.get(ks);
    if (!ev) {
      ev = { key, id: eventId(key, site.cruise, sampling), rois: 0, pos: new MeanPosition(), depthMin: null, depthMax: null, station: false };
      events.set(ks, ev);
    }
    ev.rois++;
    ev.pos.add(at.lat, at.lon);
    ev.station ||= at.positionSource === 'station';
    ev.depthMin = minOf(ev.depthMin, at.depthMin);
    ev.depthMax = maxOf(ev.depthMax, at.depthMax);
    const label = options.categoryMap?.get(o.label) ?? o.label;
    const mapping = taxa.resolve(label);
    if (mapping === undefined) {
      unmapped.add(label);
      continue;
    }
    if (mapping === NOT_AN_ORGANISM) {
      nonOrganisms++;
      continue;
    }
    const ok = `${ks}|${mapping.scientificName}|${mapping.lifeStage}|${o.state}`;
    let occ = occs.get(ok);
    if (!occ) {
      occ = { event: ev, taxon: mapping, state: o.state, labels: new Set(), count: 0, pos: new MeanPosition(), depthMin: null, depthMax: null, first: o.capturedAt, last: o.capturedAt, people: new Set(), identifiedAt: 0, versions: new Set(), media: [] };
      occs.set(ok, occ);
    }
    occ.count++;
    occ.labels.add(o.label);
    occ.pos.add(at.lat, at.lon);
    occ.depthMin = minOf(occ.depthMin, at.depthMin);
    occ.depthMax = maxOf(occ.depthMax, at.depthMax);
    occ.first = Math.min(occ.first, o.capturedAt);
    occ.last = Math.max(occ.last, o.capturedAt);
    if (o.labelledBy) occ.people.add(o.labelledBy);
    occ.identifiedAt = Math.max(occ.identifiedAt, o.labelledAt ?? o.classifiedAt);
    occ.versions.add(o.ensembleVersion);
    // The most confident images stand for the occurrence.
    occ.media.push(o);
    if (occ.media.length > mediaMax) {
      occ.media.sort((a, b) => b.probability - a.probability);
      occ.media.length = mediaMax;
    }
  }
  if (rois === 0) throw new PlankwatchError('PW_E_EXPORT_EMPTY', `No ROI matched ${describeFilter(options.filter)} in ${options.source.location}.`);
  if (unmapped.size > 0) taxa.requireAll(unmapped);

  const volumes = new VolumeTable(await options.source.volumeBins(sampling.windowMs, sampling.binM, 0, Number.MAX_SAFE_INTEGER, options.filter?.instrument ?? null));
  const zip = new ZipWriter(options.out);
  await zip.open();
  try {
    const emof = [EMOF_FIELDS.join('\t')];
    const m = (eventID: string, occurrenceID: string, id: string, t: { type: string; typeId: string; unit: string; unitId: string }, value: number, method: string): void => {
      emof.push([eventID, occurrenceID, id, t.type, t.typeId, clean(value), t.unit, t.unitId, method].map(tsvCell).join('\t'));
    };
    const eventLines = [EVENT_FIELDS.join('\t')];
    const lats: number[] = [];
    const lons: number[] = [];
    for (const ev of events.values()) {
      const p = ev.pos.value();
      if (p) {
        lats.push(p[0]);
        lons.push(p[1]);
      }
      const range = binRange(ev.key, sampling);
      const volume = volumes.event(ev.key);
      eventLines.push([
        ev.id, `${iso(ev.key.windowStart)}/${iso(ev.key.windowStart + sampling.windowMs)}`, p?.[0], p?.[1], p ? 'EPSG:4326' : '',
        p ? (ev.station ? 'mean position; some or all ROIs had no navigation fix and took the fixed station position from the configuration (export.latitude, export.longitude)' : 'mean position of the imaged ROIs, from the ship\'s navigation') : '',
        range?.[0] ?? ev.depthMin, range?.[1] ?? ev.depthMax, volume === null ? '' : clean(volume), volume === null ? '' : 'cubic metre', PROTOCOL,
        site.cruise || 'plankwatch', site.institution,
      ].map(tsvCell).join('\t'));
      if (volume !== null) m(ev.id, '', `${ev.id}_volume`, NERC.volumeSampled, volume, 'field of view x depth of field x distance through water, or the camera\'s own figure');
      m(ev.id, '', `${ev.id}_rois`, { type: 'number of regions of interest imaged (organisms and non-organisms)', typeId: '', unit: 'count', unitId: '' }, ev.rois, 'plankwatch');
    }

    const occurrences = [OCCURRENCE_FIELDS.join('\t')];
    let media = 0;
    const ranks = new Map<string, { rank: string; name: string }>();
    for (const occ of occs.values()) {
      const ev = occ.event;
      const t = occ.taxon;
      ranks.set(`${t.taxonRank}|${t.scientificName}`, { rank: t.taxonRank, name: t.scientificName });
      const status = occ.state === 'predicted' ? 'machine' : occ.state;
      const occurrenceID = `${ev.id}_${slug(t.scientificName)}${t.lifeStage ? `-${slug(t.lifeStage)}` : ''}_${status}`;
      const volume = volumes.event(ev.key);
      const perM3 = volume !== null && volume > 0 ? occ.count / volume : null;
      const names: string[] = [];
      for (const o of occ.media) {
        const found = options.imageDirs ? await readFrameImage(o.relPath, o.sha256, options.imageDirs) : null;
        const bytes = found?.bytes ?? (await options.source.thumbnail(o.instrument, o.sha256));
        if (!bytes) continue;
        const name = `media/${objectId(o)}${found ? extname(found.path).toLowerCase() || '.jpg' : '.jpg'}`;
        zip.add(name, bytes, false);
        names.push(name);
        media++;
      }
      const p = occ.pos.value();
      const versions = [...occ.versions].sort().join(', ');
      occurrences.push([
        ev.id, occurrenceID, 'MachineObservation', 'present', t.scientificName, t.scientificNameID, t.taxonRank, t.kingdom, t.lifeStage,
        [...occ.labels].sort().join(' | '), occ.state === 'dubious' ? '?' : '', VERIFICATION_STATUS[occ.state],
        [...occ.people].sort().join(' | '), iso(occ.identifiedAt), `plankwatch ensemble ${versions}`,
        occ.state === 'dubious' ? 'flagged dubious on review' : occ.state === 'validated' ? 'validated on board on review' : 'automated classification, not reviewed',
        occ.count, perM3 === null ? occ.count : clean(perM3), perM3 === null ? 'individuals' : 'individuals per cubic metre',
        occ.first === occ.last ? iso(occ.first) : `${iso(occ.first)}/${iso(occ.last)}`, p?.[0], p?.[1], p ? 'EPSG:4326' : '',
        occ.depthMin, occ.depthMax, names.join(' | '),
      ].map(tsvCell).join('\t'));
      m(ev.id, occurrenceID, `${occurrenceID}_count`, NERC.count, occ.count, 'regions of interest counted');
      if (perM3 !== null) m(ev.id, occurrenceID, `${occurrenceID}_per_m3`, NERC.abundancePerVolume, perM3, 'count / volume sampled in the event');
    }

    const box = lats.length > 0 ? (() => {
      const [west, east] = longitudeRange(lons);
      return { west, east, north: Math.max(...lats), south: Math.min(...lats) };
    })() : null;
    const now = options.now ?? Date.now();
    const ds = options.dataset ?? { licence: 'CC-BY-4.0', creator: { name: '', email: '' }, contact: { name: '', email: '' } };
    zip.add('meta.xml', metaXml());
    zip.add('eml.xml', emlXml({
      title: options.title ?? `Plankton imaging ${site.cruise || ''}`.trim(), institution: site.institution, licence: ds.licence,
      creator: ds.creator, contact: ds.contact, box, period: [firstAt, lastAt],
      taxa: [...ranks.values()].sort((a, b) => a.name.localeCompare(b.name)), now,
    }));
    zip.add('event.txt', `${eventLines.join('\n')}\n`);
    zip.add('occurrence.txt', `${occurrences.join('\n')}\n`);
    zip.add('extendedmeasurementorfact.txt', `${emof.join('\n')}\n`);
    await zip.finish();
    return { out: options.out, events: events.size, occurrences: occurrences.length - 1, measurements: emof.length - 1, nonOrganisms, media };
  } catch (err) {
    await zip.abort();
    throw err;
  }
}

