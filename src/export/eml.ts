// eml.xml for a Darwin Core Archive, in the GBIF EML profile (elements in the order its schema
// wants): title, creator, metadata provider, date, abstract, the licence GBIF and OBIS read
// (intellectualRights with the licence's URL), geographic, temporal and taxonomic coverage computed
// from the data, and the contact.

export const LICENCES = {
  'CC-BY-4.0': { url: 'http://creativecommons.org/licenses/by/4.0/legalcode', title: 'Creative Commons Attribution (CC-BY) 4.0 License' },
  'CC0-1.0': { url: 'http://creativecommons.org/publicdomain/zero/1.0/legalcode', title: 'Public Domain (CC0 1.0)' },
  'CC-BY-NC-4.0': { url: 'http://creativecommons.org/licenses/by-nc/4.0/legalcode', title: 'Creative Commons Attribution Non Commercial (CC-BY-NC) 4.0 License' },
} as const;

export type Licence = keyof typeof LICENCES;

export interface Person {
  name: string;
  email: string;
}

export interface BoundingBox {
  west: number;
  east: number;
  north: number;
  south: number;
}

export interface EmlOptions {
  title: string;
  institution: string;
  licence: Licence;
  creator: Person;
  /** Empty name and e-mail: the creator. */
  contact: Person;
  /** Null: no position known (the archive then fails validation). */
  box: BoundingBox | null;
  /** First and last capture time, ms. */
  period: [number, number] | null;
  /** Distinct (rank, name) of the occurrences. */
  taxa: { rank: string; name: string }[];
  now: number;
}

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function party(tag: string, p: Person, org: string): string {
  const lines: string[] = [];
  if (p.name.trim()) {
    const words = p.name.trim().split(/\s+/);
    const sur = words.pop()!;
    const given = words.join(' ');
    lines.push(`<individualName>${given ? `<givenName>${xmlEscape(given)}</givenName>` : ''}<surName>${xmlEscape(sur)}</surName></individualName>`);
  }
  if (org || lines.length === 0) lines.push(`<organizationName>${xmlEscape(org || 'unknown')}</organizationName>`);
  if (p.email.trim()) lines.push(`<electronicMailAddress>${xmlEscape(p.email.trim())}</electronicMailAddress>`);
  return `    <${tag}>${lines.join('')}</${tag}>`;
}

/**
 * The smallest longitude range holding every longitude, which may cross 180° (then west > east,
 * as EML allows). Longitudes in [-180, 180].
 */
export function longitudeRange(lons: readonly number[]): [number, number] {
  const sorted = [...lons].sort((a, b) => a - b);
  if (sorted.length === 0) return [0, 0];
  // The largest gap between neighbours (the wrap-around one included) is the part left out.
  let gap = sorted[0]! + 360 - sorted[sorted.length - 1]!;
  let west = sorted[0]!;
  let east = sorted[sorted.length - 1]!;
  for (let i = 1; i < sorted.length; i++) {
    const g = sorted[i]! - sorted[i - 1]!;
    if (g > gap) {
      gap = g;
      west = sorted[i]!;
      east = sorted[i - 1]!;
    }
  }
  return [west, east];
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function emlXml(o: EmlOptions): string {
  const org = o.institution;
  const contact = o.contact.name.trim() || o.contact.email.trim() ? o.contact : o.creator;
  const licence = LICENCES[o.licence];
  const coverage: string[] = [];
  if (o.box) {
    coverage.push(`      <geographicCoverage>
        <geographicDescription>Positions of the imaged organisms along the ship's track (or the fixed station where no position was recorded).</geographicDescription>
        <boundingCoordinates>
          <westBoundingCoordinate>${o.box.west}</westBoundingCoordinate>
          <eastBoundingCoordinate>${o.box.east}</eastBoundingCoordinate>
          <northBoundingCoordinate>${o.box.north}</northBoundingCoordinate>
          <southBoundingCoordinate>${o.box.south}</southBoundingCoordinate>
        </boundingCoordinates>
      </geographicCoverage>`);
  }
  if (o.period) {
    coverage.push(`      <temporalCoverage>
        <rangeOfDates>
          <beginDate><calendarDate>${day(o.period[0])}</calendarDate></beginDate>
          <endDate><calendarDate>${day(o.period[1])}</calendarDate></endDate>
        </rangeOfDates>
      </temporalCoverage>`);
  }
  if (o.taxa.length > 0) {
    const items = o.taxa.map((t) => `        <taxonomicClassification>${t.rank ? `<taxonRankName>${xmlEscape(t.rank)}</taxonRankName>` : ''}<taxonRankValue>${xmlEscape(t.name)}</taxonRankValue></taxonomicClassification>`);
    coverage.push(`      <taxonomicCoverage>
        <generalTaxonomicCoverage>Plankton imaged in situ, identified to the lowest rank the classifier's classes allow.</generalTaxonomicCoverage>
${items.join('\n')}
      </taxonomicCoverage>`);
  }
  return `<?xml version="1.0" encoding="UTF-8"?>
<eml:eml xmlns:eml="eml://ecoinformatics.org/eml-2.1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="eml://ecoinformatics.org/eml-2.1.1 http://rs.gbif.org/schema/eml-gbif-profile/1.1/eml.xsd"
  packageId="plankwatch-${o.now}" system="plankwatch" scope="system" xml:lang="en">
  <dataset>
    <title xml:lang="en">${xmlEscape(o.title)}</title>
${party('creator', o.creator, org)}
${party('metadataProvider', o.creator, org)}
    <pubDate>${day(o.now)}</pubDate>
    <language>en</language>
    <abstract><para>Plankton regions of interest imaged in situ and classified by a convolutional-network ensemble (plankwatch). Each occurrence is one taxon in one sampling event (a tow segment and depth bin) with one verification status; organismQuantity is individuals per cubic metre of water imaged. identificationVerificationStatus says whether a person validated the machine's identification.</para></abstract>
    <intellectualRights><para>This work is licensed under a <ulink url="${licence.url}"><citetitle>${licence.title}</citetitle></ulink>.</para></intellectualRights>
${coverage.length > 0 ? `    <coverage>\n${coverage.join('\n')}\n    </coverage>\n` : ''}${party('contact', contact, org)}
  </dataset>
</eml:eml>
`;
}
