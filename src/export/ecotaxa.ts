// EcoTaxa import package: one `ecotaxa_<name>.tsv` (header row, then the type row [t]/[f]) and the
// images it names, zipped. Objects whose image cannot be found are left out of the TSV (EcoTaxa
// refuses an import that names a missing file) and listed in `missing_images.tsv`. An export with no
// object to import is an error (PW_E_EXPORT_EMPTY), not an empty zip.
import { extname } from 'node:path';
import { PlankwatchError } from '../errors.js';
import { readFrameImage } from '../ingest/index.js';
import { eventId, place, round, sampleKeyOf, segmentId, VolumeTable, DEFAULT_SAMPLING, type Sampling, type SiteMetadata } from './sampling.js';
import { describeFilter, type ExportFilter, type ExportObject, type ExportSource } from './source.js';
import { ZipWriter } from './zip.js';

export type { SiteMetadata } from './sampling.js';

export interface EcoTaxaOptions {
  source: ExportSource;
  out: string;
  filter?: ExportFilter;
  /** Folders where images are looked up by relative path (see images.ts). */
  imageDirs: string[];
  site: SiteMetadata;
  /** plankwatch label → EcoTaxa category name (e.g. copepod_calanoid → Calanoida). */
  categoryMap?: Map<string, string>;
  /** Name used in the TSV file name (default: "plankwatch"). */
  name?: string;
  /** Tow segments (samples) and depth bins (acquisitions); default one hour, 5 m. */
  sampling?: Sampling;
}

export interface ExportSummary {
  out: string;
  objects: number;
  images: number;
  missingImages: number;
}

/** [name, type] of every column, in order. */
export const ECOTAXA_COLUMNS: readonly [string, 't' | 'f'][] = [
  ['img_file_name', 't'],
  ['object_id', 't'],
  ['object_lat', 'f'],
  ['object_lon', 'f'],
  ['object_date', 't'],
  ['object_time', 't'],
  ['object_depth_min', 'f'],
  ['object_depth_max', 'f'],
  ['object_position_source', 't'],
  ['object_depth_source', 't'],
  ['object_temperature', 'f'],
  ['object_salinity', 'f'],
  ['object_annotation_status', 't'],
  ['object_annotation_category', 't'],
  ['object_annotation_person_name', 't'],
  ['object_annotation_date', 't'],
  ['object_annotation_time', 't'],
  ['object_width', 'f'],
  ['object_height', 'f'],
  ['object_area', 'f'],
  ['object_area_um2', 'f'],
  ['object_major', 'f'],
  ['object_minor', 'f'],
  ['object_angle', 'f'],
  ['object_mean', 'f'],
  ['object_bbox_x', 'f'],
  ['object_bbox_y', 'f'],
  ['object_bbox_w', 'f'],
  ['object_bbox_h', 'f'],
  ['object_probability', 'f'],
  ['object_predicted_category', 't'],
  ['object_ensemble_version', 't'],
  ['object_sha256', 't'],
  ['object_camera_frame', 't'],
  ['object_camera_frame_sha256', 't'],
  ['sample_id', 't'],
  ['sample_tot_vol', 'f'],
  ['acq_id', 't'],
  ['acq_tot_vol', 'f'],
  ['acq_instrument', 't'],
  ['process_pixel', 'f'],
];

/** YYYYMMDD and HHMMSS in UTC. */
export function ecotaxaDateTime(ms: number): [string, string] {
  const iso = new Date(ms).toISOString();
  return [iso.slice(0, 10).replace(/-/g, ''), iso.slice(11, 19).replace(/:/g, '')];
}

/** A TSV cell: no tabs or line breaks inside. */
export function tsvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  return String(v).replace(/[\t\r\n]+/g, ' ');
}

/** `<instrument>_<first 16 hex of sha256>`: unique in practice, stable across exports. */
export function objectId(o: Pick<ExportObject, 'instrument' | 'sha256'>): string {
  return `${o.instrument}_${o.sha256.slice(0, 16)}`;
}

/**
 * One TSV row. Position and depth are the ROI's own (navigation stage) where it has them, else the
 * station's from the config; object_position_source and object_depth_source say which
 * ("interpolated", "held" past a gap, or "station"). sample_tot_vol is the volume sampled in the
 * tow segment (every depth) and acq_tot_vol in its depth bin, both in m³. A ROI cut from a whole
 * camera frame carries its measures there, in pixels of the frame: object_area (the organism's
 * pixels), object_major/minor (ellipse axes), object_angle (major axis from the x axis,
 * counter-clockwise, [0, 180) as ImageJ/ZooProcess), object_mean (mean grey), its box
 * (object_bbox_*), the camera frame's path and SHA-256, and process_pixel (µm per pixel, when the
 * camera's pixel size was known); these cells are empty for a ROI the camera cut itself.
 * object_area_um2 is object_area in µm² where camera.pixelSizeUm was known (a ROI the camera cut:
 * its organism's pixels against the image's own background, stored from migration 10); else empty.
 */
export function ecotaxaRow(o: ExportObject, image: string, site: SiteMetadata, categoryMap?: Map<string, string>, sampling: Sampling = DEFAULT_SAMPLING, volumes?: VolumeTable): string[] {
  const [date, time] = ecotaxaDateTime(o.capturedAt);
  const [ldate, ltime] = o.labelledAt !== null ? ecotaxaDateTime(o.labelledAt) : ['', ''];
  const category = (l: string): string => categoryMap?.get(l) ?? l;
  const at = place(o, site);
  const key = sampleKeyOf(o, sampling);
  const vol = (v: number | null | undefined): number | null => (v === null || v === undefined ? null : round(v, 9));
  const cf = o.cameraFrame;
  const values: Record<string, string | number | null> = {
    img_file_name: image,
    object_id: objectId(o),
    object_lat: at.lat,
    object_lon: at.lon,
    object_date: date,
    object_time: time,
    object_depth_min: at.depthMin,
    object_depth_max: at.depthMax,
    object_position_source: at.positionSource,
    object_depth_source: at.depthSource,
    object_temperature: o.temperatureC,
    object_salinity: o.salinity,
    object_annotation_status: o.state,
    object_annotation_category: category(o.label),
    object_annotation_person_name: o.labelledBy,
    object_annotation_date: ldate,
    object_annotation_time: ltime,
    object_width: o.width,
    object_height: o.height,
    object_area: cf ? cf.areaPx : o.area,
    object_area_um2: cf ? (cf.pixelSizeUm === null ? null : round(cf.areaPx * cf.pixelSizeUm * cf.pixelSizeUm, 2)) : o.areaUm2 === null ? null : round(o.areaUm2, 2),
    object_major: cf ? round(cf.majorPx, 2) : null,
    object_minor: cf ? round(cf.minorPx, 2) : null,
    object_angle: cf ? angle180(cf.orientationDeg) : null,
    object_mean: cf ? round(cf.meanGrey, 2) : null,
    object_bbox_x: cf?.x ?? null,
    object_bbox_y: cf?.y ?? null,
    object_bbox_w: cf?.width ?? null,
    object_bbox_h: cf?.height ?? null,
    object_probability: o.probability,
    object_predicted_category: category(o.predictedLabel),
    object_ensemble_version: o.ensembleVersion,
    object_sha256: o.sha256,
    object_camera_frame: cf?.relPath ?? null,
    object_camera_frame_sha256: cf?.sha256 ?? null,
    sample_id: segmentId(key, site.cruise),
    sample_tot_vol: vol(volumes?.segment(key)),
    acq_id: eventId(key, site.cruise, sampling),
    acq_tot_vol: vol(volumes?.event(key)),
    acq_instrument: 'plankwatch',
    process_pixel: cf?.pixelSizeUm ?? null,
  };
  return ECOTAXA_COLUMNS.map(([name]) => tsvCell(values[name]));
}

/**
 * An orientation in (-90, 90] as [0, 180), to 0.01°: rounded first, so that the same orientation
 * sent ashore at 0.01° (sync) gives the same cell; -0.004° is 0, not 180.
 */
function angle180(orientationDeg: number): number {
  const a = round(orientationDeg, 2);
  return a < 0 ? round(a + 180, 2) : a + 0;
}

/**
 * Writes the zip. Throws PW_E_EXPORT_EMPTY, writing nothing, when no ROI matches the filter or
 * none of those that do has its image (EcoTaxa cannot import an object without one).
 */
export async function exportEcoTaxa(options: EcoTaxaOptions): Promise<ExportSummary> {
  const zip = new ZipWriter(options.out);
  await zip.open();
  try {
    const lines = [ECOTAXA_COLUMNS.map(([n]) => n).join('\t'), ECOTAXA_COLUMNS.map(([, t]) => `[${t}]`).join('\t')];
    const missing = ['object_id\tinstrument\tsha256\trel_path'];
    let objects = 0;
    let images = 0;
    const sampling = options.sampling ?? DEFAULT_SAMPLING;
    const volumes = new VolumeTable(await options.source.volumeBins(sampling.windowMs, sampling.binM, 0, Number.MAX_SAFE_INTEGER, options.filter?.instrument ?? null));
    for await (const o of options.source.objects(options.filter)) {
      const found = await readFrameImage(o.relPath, o.sha256, options.imageDirs);
      let bytes = found?.bytes ?? null;
      let ext = found ? extname(found.path).toLowerCase() || '.jpg' : '.jpg';
      if (!bytes) {
        bytes = await options.source.thumbnail(o.instrument, o.sha256);
        ext = '.jpg';
      }
      if (!bytes) {
        missing.push([objectId(o), o.instrument, o.sha256, o.relPath].map(tsvCell).join('\t'));
        continue;
      }
      const image = `images/${objectId(o)}${ext}`;
      zip.add(image, bytes, false);
      images++;
      lines.push(ecotaxaRow(o, image, options.site, options.categoryMap, sampling, volumes).join('\t'));
      objects++;
    }
    if (objects === 0) {
      const matched = missing.length - 1;
      const where = describeFilter(options.filter);
      throw new PlankwatchError(
        'PW_E_EXPORT_EMPTY',
        matched === 0
          ? `No ROI matched ${where} in ${options.source.location}.`
          : `${matched} ROI(s) matched ${where} but none has its image: looked in ${options.imageDirs.join(', ') || 'no folder'}${options.source.kind === 'shore' ? ' and among the thumbnails stored ashore' : ''}. Pass --images DIR where the images are, or export Darwin Core (dwc), which needs none.`,
      );
    }
    zip.add(`ecotaxa_${options.name ?? 'plankwatch'}.tsv`, `${lines.join('\n')}\n`);
    if (missing.length > 1) zip.add('missing_images.tsv', `${missing.join('\n')}\n`);
    await zip.finish();
    return { out: options.out, objects, images, missingImages: missing.length - 1 };
  } catch (err) {
    await zip.abort();
    throw err;
  }
}
