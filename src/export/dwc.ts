// Darwin Core Archive (OBIS-ENV-DATA layout): an Event core (one event per instrument and UTC hour),
// an Occurrence extension (one occurrence per ROI) and an ExtendedMeasurementOrFact extension
// (classification probability, image size and organism area per ROI; ROI count per event),
// described by meta.xml, with a minimal eml.xml.
//
// identificationVerificationStatus uses plain words from the label state:
//   predicted → "unverified", validated → "verified", dubious → "dubious".
import { PlankwatchError } from '../errors.js';
import type { LabelState } from '../sync/records.js';
import type { SiteMetadata } from './ecotaxa.js';
import { objectId, tsvCell } from './ecotaxa.js';
import { describeFilter, type ExportFilter, type ExportObject, type ExportSource } from './source.js';
import { ZipWriter } from './zip.js';

export interface DwcOptions {
  source: ExportSource;
  out: string;
  filter?: ExportFilter;
  site: SiteMetadata;
  /** plankwatch label → scientific name (e.g. copepod_calanoid → Calanoida). */
  categoryMap?: Map<string, string>;
  /** Dataset title in eml.xml. */
  title?: string;
  now?: number;
}

export interface DwcSummary {
  out: string;
  events: number;
  occurrences: number;
  measurements: number;
}

export const VERIFICATION_STATUS: Record<LabelState, string> = {
  predicted: 'unverified',
  validated: 'verified',
  dubious: 'dubious',
};

const DWC = 'http://rs.tdwg.org/dwc/terms/';

export const EVENT_FIELDS = [
  'eventID', 'eventDate', 'decimalLatitude', 'decimalLongitude', 'minimumDepthInMeters', 'maximumDepthInMeters',
  'samplingProtocol', 'datasetName', 'institutionCode',
] as const;
export const OCCURRENCE_FIELDS = [
  'eventID', 'occurrenceID', 'basisOfRecord', 'occurrenceStatus', 'scientificName', 'verbatimIdentification',
  'identificationVerificationStatus', 'identifiedBy', 'dateIdentified', 'identificationRemarks', 'organismQuantity',
  'organismQuantityType', 'associatedMedia',
] as const;
export const EMOF_FIELDS = ['eventID', 'occurrenceID', 'measurementType', 'measurementValue', 'measurementUnit', 'measurementMethod'] as const;

/** Every column here is a Darwin Core term. */
function fieldUri(name: string): string {
  return `${DWC}${name}`;
}

/** meta.xml: the core and its two extensions, every column mapped to its term. */
export function metaXml(): string {
  const fields = (names: readonly string[], skipFirst: boolean): string =>
    names.map((n, i) => (skipFirst && i === 0 ? '' : `    <field index="${i}" term="${fieldUri(n)}"/>`)).filter(Boolean).join('\n');
  const files = (name: string): string => `<files><location>${name}</location></files>`;
  const common = 'encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy="" ignoreHeaderLines="1"';
  return `<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/" metadata="eml.xml">
  <core ${common} rowType="${DWC}Event">
    ${files('event.txt')}
    <id index="0"/>
${fields(EVENT_FIELDS, false)}
  </core>
  <extension ${common} rowType="${DWC}Occurrence">
    ${files('occurrence.txt')}
    <coreid index="0"/>
${fields(OCCURRENCE_FIELDS, true)}
  </extension>
  <extension ${common} rowType="http://rs.iobis.org/obis/terms/ExtendedMeasurementOrFact">
    ${files('extendedmeasurementorfact.txt')}
    <coreid index="0"/>
${fields(EMOF_FIELDS, true)}
  </extension>
</archive>
`;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function emlXml(title: string, institution: string, now: number): string {
  const org = institution || 'unknown';
  return `<?xml version="1.0" encoding="UTF-8"?>
<eml:eml xmlns:eml="eml://ecoinformatics.org/eml-2.1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="eml://ecoinformatics.org/eml-2.1.1 http://rs.gbif.org/schema/eml-gbif-profile/1.1/eml.xsd"
  packageId="plankwatch-${now}" system="plankwatch" scope="system" xml:lang="en">
  <dataset>
    <title xml:lang="en">${xmlEscape(title)}</title>
    <creator><organizationName>${xmlEscape(org)}</organizationName></creator>
    <metadataProvider><organizationName>${xmlEscape(org)}</organizationName></metadataProvider>
    <pubDate>${new Date(now).toISOString().slice(0, 10)}</pubDate>
    <language>en</language>
    <abstract><para>Plankton regions of interest imaged in situ and classified by a convolutional-network ensemble (plankwatch). Each occurrence is one imaged organism; identificationVerificationStatus says whether a person verified the machine's identification.</para></abstract>
    <contact><organizationName>${xmlEscape(org)}</organizationName></contact>
  </dataset>
</eml:eml>
`;
}

/** `<cruise_>instrument_YYYYMMDDTHH`: one event per instrument and UTC hour. */
export function eventIdOf(o: Pick<ExportObject, 'instrument' | 'classifiedAt'>, cruise: string): string {
  const iso = new Date(o.classifiedAt).toISOString();
  return `${cruise ? `${cruise}_` : ''}${o.instrument}_${iso.slice(0, 10).replace(/-/g, '')}T${iso.slice(11, 13)}`;
}

/** Writes the archive. Throws PW_E_EXPORT_EMPTY, writing nothing, when no ROI matches the filter. */
export async function exportDwc(options: DwcOptions): Promise<DwcSummary> {
  const site = options.site;
  const map = (l: string): string => options.categoryMap?.get(l) ?? l;
  const events = new Map<string, { start: number; instrument: string; rois: number }>();
  const occurrences = [OCCURRENCE_FIELDS.join('\t')];
  const emof = [EMOF_FIELDS.join('\t')];
  for await (const o of options.source.objects(options.filter)) {
    const eventID = eventIdOf(o, site.cruise);
    const hour = Math.floor(o.classifiedAt / 3_600_000) * 3_600_000;
    const ev = events.get(eventID) ?? { start: hour, instrument: o.instrument, rois: 0 };
    ev.rois++;
    events.set(eventID, ev);
    const occurrenceID = objectId(o);
    occurrences.push(
      [
        eventID, occurrenceID, 'MachineObservation', 'present', map(o.label), o.label,
        VERIFICATION_STATUS[o.state], o.state === 'predicted' ? `plankwatch ensemble ${o.ensembleVersion}` : (o.labelledBy ?? ''),
        o.labelledAt !== null ? new Date(o.labelledAt).toISOString() : new Date(o.classifiedAt).toISOString(),
        `machine prediction ${o.predictedLabel} (p=${o.probability}) by ensemble ${o.ensembleVersion}`, 1, 'individuals', o.relPath,
      ].map(tsvCell).join('\t'),
    );
    const m = (type: string, value: number | null, unit: string, method: string): void => {
      if (value !== null) emof.push([eventID, occurrenceID, type, value, unit, method].map(tsvCell).join('\t'));
    };
    m('classification probability', o.probability, 'dimensionless', `plankwatch ensemble ${o.ensembleVersion}`);
    m('image width', o.width, 'pixels', 'ROI image');
    m('image height', o.height, 'pixels', 'ROI image');
    m('organism area', o.area, 'pixels', 'non-background pixels of the ROI image');
  }
  if (occurrences.length === 1) {
    throw new PlankwatchError('PW_E_EXPORT_EMPTY', `No ROI matched ${describeFilter(options.filter)} in ${options.source.location}.`);
  }
  const eventLines = [EVENT_FIELDS.join('\t')];
  for (const [id, ev] of events) {
    const interval = `${new Date(ev.start).toISOString()}/${new Date(ev.start + 3_600_000).toISOString()}`;
    eventLines.push(
      [id, interval, site.latitude, site.longitude, site.depthMinM, site.depthMaxM,
        'in situ imaging, automated classification (plankwatch)', site.cruise || 'plankwatch', site.institution].map(tsvCell).join('\t'),
    );
    emof.push([id, '', 'number of imaged organisms (ROIs) classified', ev.rois, 'count', 'plankwatch'].map(tsvCell).join('\t'));
  }
  const zip = new ZipWriter(options.out);
  await zip.open();
  const now = options.now ?? Date.now();
  zip.add('meta.xml', metaXml());
  zip.add('eml.xml', emlXml(options.title ?? `Plankton imaging ${site.cruise || ''}`.trim(), site.institution, now));
  zip.add('event.txt', `${eventLines.join('\n')}\n`);
  zip.add('occurrence.txt', `${occurrences.join('\n')}\n`);
  zip.add('extendedmeasurementorfact.txt', `${emof.join('\n')}\n`);
  await zip.finish();
  return { out: options.out, events: events.size, occurrences: occurrences.length - 1, measurements: emof.length - 1 };
}
