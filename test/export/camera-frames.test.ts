// The EcoTaxa export of ROIs cut from a whole camera frame: a composed frame (real NDSB ROIs) is
// segmented by the real segment stage into a real SQLite store, each ROI classified as the
// pipeline would; the TSV then carries each ROI's measures from camera_frame_rois (area, axes,
// angle, mean grey, box in the frame), the camera frame's path and SHA-256, and process_pixel from
// the camera's pixel size. A ROI the camera cut itself keeps those cells empty.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { compose, loadRois, roiFiles, type Box } from '../../src/bench/compose-frames.js';
import { ECOTAXA_COLUMNS, exportEcoTaxa } from '../../src/export/ecotaxa.js';
import { ExportSource } from '../../src/export/source.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_SEGMENT_SETTINGS } from '../../src/segment/index.js';
import { SegmentStage } from '../../src/segment/stage.js';
import { Store } from '../../src/store/index.js';
import { classified, fixtureFiles, incoming } from '../store/helpers.js';
import { tmp } from '../sync/helpers.js';
import { unzip } from './unzip.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const SITE = { latitude: '25.7', longitude: '-80.1', depthMinM: '5', depthMaxM: '40', cruise: 'WS1406', institution: 'OSU' };
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const PIXEL_UM = 12.5;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function iou(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  const inter = w > 0 && h > 0 ? w * h : 0;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

interface RoiRow {
  sha256: string;
  x: number;
  y: number;
  width: number;
  height: number;
  area_px: number;
  major_px: number;
  minor_px: number;
  orientation_deg: number;
  mean_grey: number;
}

describe('EcoTaxa export of ROIs cut from camera frames', () => {
  it('carries each ROI’s area, axes, angle, mean grey and box in its camera frame, and the pixel size', async () => {
    const root = tmp('export-camera-frames');
    const dbPath = path.join(root, 'ship.db');
    const archive = path.join(root, 'archive');
    const store = new Store({ path: dbPath, countsWindowMs: 60_000, logger: silentLogger() });
    store.start();
    let storeOpen = true;
    cleanups.push(() => {
      if (storeOpen) store.stop();
    });

    const rois = await loadRois(roiFiles(path.join(REPO, 'test/fixtures/ndsb'), 1000));
    const frame = compose({ width: 800, height: 600, level: 215, polarity: 'bright-field', lightSeed: 7, vignette: 0.2, gradient: 0.1, banding: 0, noise: 3, seed: 21 }, rois, 8);
    const png = await sharp(Buffer.from(frame.gray), { raw: { width: 800, height: 600, channels: 1 } }).png().toBuffer();
    const framePath = path.join(root, 'frame-0001.png');
    writeFileSync(framePath, png);
    const frameSha = createHash('sha256').update(png).digest('hex');

    let at = T0;
    const stage = new SegmentStage({
      settings: { ...DEFAULT_SEGMENT_SETTINGS, background: 'local' },
      pixelSizeUm: PIXEL_UM,
      frameVolumeL: 0,
      maxPixels: 25_000_000,
      roiRoot: archive,
      repository: store.cameraFrameRepository(),
      hooks: {
        // As the pipeline: the ROI classified and stored as a frames row (by SHA-256).
        classify: async (roi) => {
          store.recordClassified([classified(roi, 'copepod_calanoid', (at += 1000))]);
        },
        roiStored: (sha256) => store.database.prepare('SELECT 1 FROM frames WHERE sha256 = ?').get(sha256) !== undefined,
        reject: () => undefined,
        settled: () => undefined,
        failed: (_file, err) => {
          throw err;
        },
      },
      logger: silentLogger(),
    });
    await stage.start();
    let stageRunning = true;
    cleanups.push(async () => {
      if (stageRunning) await stage.stop();
    });
    await stage.handle({ path: framePath, relPath: 'frame-0001.png', sha256: frameSha, bytes: png.length, arrivedAt: T0, mtimeMs: T0 });

    // A ROI the camera cut itself, in the same database and archive.
    const plain = fixtureFiles()[0]!;
    const plainFile = incoming(plain, 'rois/plain.jpg', at + 1000);
    store.recordClassified([classified(plainFile, 'detritus_other', at + 1000)]);
    mkdirSync(path.join(archive, 'rois'), { recursive: true });
    copyFileSync(plain, path.join(archive, 'rois/plain.jpg'));

    const measured = store.database.prepare('SELECT r.* FROM camera_frame_rois r JOIN camera_frames f ON f.id = r.camera_frame_id WHERE f.sha256 = ? ORDER BY r.roi_index').all(frameSha) as RoiRow[];
    expect(measured.length).toBeGreaterThanOrEqual(5);
    await stage.stop();
    stageRunning = false;
    store.stop();
    storeOpen = false;

    const source = ExportSource.open(dbPath, 'isiis-1');
    cleanups.push(() => source.close());
    const out = path.join(root, 'ecotaxa.zip');
    const summary = await exportEcoTaxa({ source, out, imageDirs: [archive], site: SITE });
    expect(summary).toMatchObject({ objects: measured.length + 1, images: measured.length + 1, missingImages: 0 });
    const lines = unzip(out).get('ecotaxa_plankwatch.tsv')!.toString('utf8').replace(/\n$/, '').split('\n').map((l) => l.split('\t'));
    expect(lines[0]).toEqual(ECOTAXA_COLUMNS.map(([n]) => n));
    const types = new Map(ECOTAXA_COLUMNS);
    for (const name of ['object_area', 'object_major', 'object_minor', 'object_angle', 'object_mean', 'object_bbox_x', 'object_bbox_y', 'object_bbox_w', 'object_bbox_h', 'process_pixel']) expect(types.get(name)).toBe('f');
    expect(types.get('object_camera_frame')).toBe('t');
    expect(lines[1]).toEqual(ECOTAXA_COLUMNS.map(([, t]) => `[${t}]`));
    const col = (name: string): number => {
      const i = lines[0]!.indexOf(name);
      expect(i, name).toBeGreaterThanOrEqual(0);
      return i;
    };
    const bySha = new Map(lines.slice(2).map((r) => [r[col('object_sha256')]!, r]));
    const num = (r: string[], name: string): number => {
      const cell = r[col(name)]!;
      expect(cell, name).toMatch(/^-?\d+(\.\d+)?$/);
      return Number(cell);
    };

    for (const m of measured) {
      const r = bySha.get(m.sha256)!;
      expect(r, m.sha256).toBeDefined();
      expect(num(r, 'object_area')).toBe(m.area_px);
      expect(num(r, 'object_area')).not.toBe(321); // not the ROI image's own area from the frames row
      expect(num(r, 'object_major')).toBeCloseTo(m.major_px, 2);
      expect(num(r, 'object_minor')).toBeCloseTo(m.minor_px, 2);
      expect(num(r, 'object_major')).toBeGreaterThanOrEqual(num(r, 'object_minor'));
      const angle = num(r, 'object_angle');
      expect(angle).toBeGreaterThanOrEqual(0);
      expect(angle).toBeLessThanOrEqual(180);
      expect(angle).toBeCloseTo(m.orientation_deg < 0 ? m.orientation_deg + 180 : m.orientation_deg, 2);
      expect(num(r, 'object_mean')).toBeCloseTo(m.mean_grey, 2);
      expect(num(r, 'object_mean')).toBeLessThan(215); // organisms are darker than the water
      const box = { x: num(r, 'object_bbox_x'), y: num(r, 'object_bbox_y'), width: num(r, 'object_bbox_w'), height: num(r, 'object_bbox_h') };
      expect(box).toEqual({ x: m.x, y: m.y, width: m.width, height: m.height });
      expect(num(r, 'process_pixel')).toBe(PIXEL_UM);
      expect(r[col('object_camera_frame')]).toBe('frame-0001.png');
      expect(r[col('object_camera_frame_sha256')]).toBe(frameSha);
    }
    // The boxes are in the camera frame's pixels: each lies on an organism pasted there.
    const onTruth = measured.filter((m) => frame.truth.some((t) => iou(t, m) >= 0.5)).length;
    expect(onTruth / measured.length).toBeGreaterThanOrEqual(0.8);

    const own = bySha.get(plainFile.sha256)!;
    expect(own[col('object_area')]).toBe('321');
    for (const name of ['object_major', 'object_minor', 'object_angle', 'object_mean', 'object_bbox_x', 'object_bbox_w', 'object_camera_frame', 'object_camera_frame_sha256', 'process_pixel']) expect(own[col(name)], name).toBe('');
  }, 60_000);
});
