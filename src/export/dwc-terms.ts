// The columns of the Darwin Core Archive, the terms they map to, and meta.xml. The writer (dwc.ts)
// and the validator (validate.ts) share this file, so what is written and what is checked agree.

export const DWC_NS = 'http://rs.tdwg.org/dwc/terms/';
export const OBIS_NS = 'http://rs.iobis.org/obis/terms/';
export const DWC_TEXT_NS = 'http://rs.tdwg.org/dwc/text/';

export const EVENT_ROW_TYPE = `${DWC_NS}Event`;
export const OCCURRENCE_ROW_TYPE = `${DWC_NS}Occurrence`;
export const EMOF_ROW_TYPE = `${OBIS_NS}ExtendedMeasurementOrFact`;

export const EVENT_FIELDS = [
  'eventID', 'eventDate', 'decimalLatitude', 'decimalLongitude', 'geodeticDatum', 'georeferenceRemarks',
  'minimumDepthInMeters', 'maximumDepthInMeters', 'sampleSizeValue', 'sampleSizeUnit', 'samplingProtocol',
  'datasetName', 'institutionCode',
] as const;

export const OCCURRENCE_FIELDS = [
  'eventID', 'occurrenceID', 'basisOfRecord', 'occurrenceStatus', 'scientificName', 'scientificNameID', 'taxonRank',
  'kingdom', 'lifeStage', 'verbatimIdentification', 'identificationQualifier', 'identificationVerificationStatus',
  'identifiedBy', 'dateIdentified', 'identificationReferences', 'identificationRemarks', 'individualCount',
  'organismQuantity', 'organismQuantityType', 'eventDate', 'decimalLatitude', 'decimalLongitude', 'geodeticDatum',
  'minimumDepthInMeters', 'maximumDepthInMeters', 'associatedMedia',
] as const;

export const EMOF_FIELDS = [
  'eventID', 'occurrenceID', 'measurementID', 'measurementType', 'measurementTypeID', 'measurementValue',
  'measurementUnit', 'measurementUnitID', 'measurementMethod',
] as const;

/** Terms of the OBIS ExtendedMeasurementOrFact extension that live in the OBIS namespace. */
const OBIS_TERMS = new Set(['measurementTypeID', 'measurementValueID', 'measurementUnitID']);

/**
 * Darwin Core terms (http://rs.tdwg.org/dwc/terms/) a validator accepts in meta.xml: the ones this
 * archive uses and the other common Event, Occurrence, Location, Identification, Taxon and
 * MeasurementOrFact terms.
 */
export const DWC_TERMS: ReadonlySet<string> = new Set([
  ...EVENT_FIELDS, ...OCCURRENCE_FIELDS, ...EMOF_FIELDS.filter((t) => !OBIS_TERMS.has(t)),
  'parentEventID', 'fieldNumber', 'eventTime', 'startDayOfYear', 'endDayOfYear', 'year', 'month', 'day', 'verbatimEventDate',
  'habitat', 'samplingEffort', 'fieldNotes', 'eventRemarks', 'locationID', 'higherGeography', 'waterBody', 'country',
  'countryCode', 'locality', 'verbatimDepth', 'minimumElevationInMeters', 'maximumElevationInMeters', 'locationRemarks',
  'coordinateUncertaintyInMeters', 'coordinatePrecision', 'footprintWKT', 'footprintSRS', 'georeferencedBy',
  'georeferenceProtocol', 'verbatimLatitude', 'verbatimLongitude', 'catalogNumber', 'recordNumber', 'recordedBy',
  'sex', 'reproductiveCondition', 'behavior', 'establishmentMeans', 'preparations', 'associatedSequences',
  'associatedReferences', 'occurrenceRemarks', 'organismID', 'materialSampleID', 'collectionCode', 'ownerInstitutionCode',
  'datasetID', 'dynamicProperties', 'informationWithheld', 'dataGeneralizations', 'typeStatus', 'identificationID',
  'taxonID', 'acceptedNameUsage', 'parentNameUsage', 'higherClassification', 'phylum', 'class', 'order', 'family',
  'genus', 'specificEpithet', 'infraspecificEpithet', 'scientificNameAuthorship', 'vernacularName', 'nomenclaturalCode',
  'taxonomicStatus', 'taxonRemarks', 'measurementAccuracy', 'measurementDeterminedBy', 'measurementDeterminedDate',
  'measurementRemarks', 'basisOfRecord',
]);

export const OBIS_TERM_SET: ReadonlySet<string> = OBIS_TERMS;

/** The URI of a column's term. */
export function termUri(name: string): string {
  return `${OBIS_TERMS.has(name) ? OBIS_NS : DWC_NS}${name}`;
}

/** The files of the archive, in meta.xml order. */
export const ARCHIVE_FILES = [
  { location: 'event.txt', rowType: EVENT_ROW_TYPE, fields: EVENT_FIELDS, core: true },
  { location: 'occurrence.txt', rowType: OCCURRENCE_ROW_TYPE, fields: OCCURRENCE_FIELDS, core: false },
  { location: 'extendedmeasurementorfact.txt', rowType: EMOF_ROW_TYPE, fields: EMOF_FIELDS, core: false },
] as const;

/** meta.xml: the Event core and its two extensions, every column mapped to its term (index 0 is the id). */
export function metaXml(): string {
  const common = 'encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy="" ignoreHeaderLines="1"';
  const parts = ARCHIVE_FILES.map((f) => {
    const tag = f.core ? 'core' : 'extension';
    const fields = f.fields.map((n, i) => `    <field index="${i}" term="${termUri(n)}"/>`).join('\n');
    return `  <${tag} ${common} rowType="${f.rowType}">
    <files><location>${f.location}</location></files>
    <${f.core ? 'id' : 'coreid'} index="0"/>
${fields}
  </${tag}>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="${DWC_TEXT_NS}" metadata="eml.xml">
${parts.join('\n')}
</archive>
`;
}

/** NERC vocabulary terms for the measurements (BODC P01 parameters, P06 units). */
export const NERC = {
  abundancePerVolume: { type: 'Abundance of biological entity specified elsewhere per unit volume of the water body', typeId: 'http://vocab.nerc.ac.uk/collection/P01/current/SDBIOL01/', unit: 'Number per cubic metre', unitId: 'http://vocab.nerc.ac.uk/collection/P06/current/UPMM/' },
  count: { type: 'Count (in assayed sample) of biological entity specified elsewhere', typeId: 'http://vocab.nerc.ac.uk/collection/P01/current/OCOUNT01/', unit: 'Dimensionless', unitId: 'http://vocab.nerc.ac.uk/collection/P06/current/UUUU/' },
  volumeSampled: { type: 'Volume sampled of the water body', typeId: 'http://vocab.nerc.ac.uk/collection/P01/current/VOLWBSMP/', unit: 'Cubic metres', unitId: 'http://vocab.nerc.ac.uk/collection/P06/current/MCUB/' },
} as const;
