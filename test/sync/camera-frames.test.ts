// Sync ashore of whole camera frames and the ROIs cut from them, with a real SQLite ship store, a
// real Mosquitto behind a fault-injecting proxy (connections reset mid-batch, then an outage) and
// a real shore ingester on SQLite: every ROI arrives once with all its measures, and the EcoTaxa
// export of the shore database has the same cells as the ship's. Also: a ROI's measures are queued
// with its prediction, a frame once all its ROIs are stored, once, from marks that survive a restart.
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ECOTAXA_COLUMNS, exportEcoTaxa } from '../../src/export/ecotaxa.js';
import { ExportSource } from '../../src/export/source.js';
import type { CameraFrameInsert, CameraFrameRoiInsert } from '../../src/store/index.js';
import { queueCameraFrameRecords } from '../../src/sync/camera-frame-records.js';
import { FaultProxy } from '../../src/sync/fault-proxy.js';
import type { CameraFramePayload, CameraRoisPayload } from '../../src/sync/records.js';
import { unzip } from '../export/unzip.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { classified, fixtureFiles, incoming } from '../store/helpers.js';
import { frame, openShip, sha, shipContent, startSender, tmp, until, type Ship } from './helpers.js';
import { startShore } from './shore-harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const T0 = Date.UTC(2026, 5, 3, 12, 0, 0);
const SITE = { latitude: '25.7', longitude: '-80.1', depthMinM: '5', depthMaxM: '40', cruise: 'WS1406', institution: 'OSU' };

/** A ROI's geometry with measures that are not round numbers (so any rounding on the way shows). */
function roi(index: number, roiSha: string, pixelSizeUm: number | null): CameraFrameRoiInsert {
  const areaPx = 200 + index * 7;
  const majorPx = 20 + Math.PI * index / 7;
  const minorPx = 8 + Math.E * index / 11;
  return {
    index, sha256: roiSha, relPath: `rois/${roiSha.slice(0, 8)}.jpg`,
    x: 10 * index, y: 3 * index + 1, width: 30 + index, height: 20 + (index % 9),
    cropX: 10 * index - 4, cropY: 3 * index - 3, cropWidth: 38 + index, cropHeight: 28 + (index % 9),
    areaPx, majorPx, minorPx,
    // Both signs, one exactly at 90°, and one just below 0° (0° in the export, ship and shore alike).
    orientationDeg: index === 2 ? 90 : index === 3 ? -0.003 : ((index * 37.123456789) % 180) - 89.999,
    meanGrey: 40 + Math.sqrt(index) * 13.3,
    areaUm2: pixelSizeUm === null ? null : areaPx * pixelSizeUm * pixelSizeUm,
    majorUm: pixelSizeUm === null ? null : majorPx * pixelSizeUm,
    minorUm: pixelSizeUm === null ? null : minorPx * pixelSizeUm,
  };
}

function cameraFrame(frameSha: string, relPath: string, rois: CameraFrameRoiInsert[], pixelSizeUm: number | null, volumeM3: number | null, at: number): CameraFrameInsert {
  return {
    sha256: frameSha, relPath, bytes: 4_194_304 + rois.length, mtimeMs: at, width: 2048, height: 2048, format: 'png', polarity: 'bright-field',
    backgroundGrey: 221.5, components: rois.length + 3, rejected: { small: 2, large: 0, border: 1, overflow: 0 }, pixelSizeUm, volumeM3,
    capturedAt: at, arrivedAt: at + 50, segmentedAt: at + 300, segmentMs: 250, rois,
  };
}

/**
 * As the segment stage does: records the camera frame, stores each ROI's prediction (the sync hook
 * queues it), then marks the frame done. Returns its id.
 */
function segmentAndClassify(ship: Ship, f: CameraFrameInsert, classify: () => void): number {
  const repo = ship.store.cameraFrameRepository();
  const id = repo.recordSegmented(f);
  classify();
  repo.markDone(id, { sha256: f.sha256, relPath: f.relPath, bytes: f.bytes, mtimeMs: f.mtimeMs }, f.segmentedAt + 1000);
  return id;
}

const ROI_COLUMNS = 'sha256, x, y, width, height, area_px, area_um2, major_px, minor_px, orientation_deg, mean_grey';

describe('sync ashore of camera frames and their ROIs', () => {
  it('carries every camera-frame ROI once, with all its measures, through resets and an outage; the shore export has the ship\'s cells', async () => {
    const dir = tmp('sync-cf');
    const archive = path.join(dir, 'archive');
    mkdirSync(path.join(archive, 'rois'), { recursive: true });
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: broker.port, latencyMs: 100, bytesPerSecond: 16_000 });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const shore = await startShore(dir, broker.url);
    cleanups.push(() => shore.stop());
    const ship = openShip(dir, 'cam-f');
    cleanups.push(() => ship.close());

    // Frame A (12.5 µm/px, 2 L imaged): three ROIs with images in the archive and 147 more without
    // (more than one camera_rois record). Frame B (pixel size unknown): the other two images.
    const files = fixtureFiles().map((fx, i) => {
      const f = incoming(fx, `rois/${path.basename(fx)}`, T0 + i * 10);
      copyFileSync(fx, path.join(archive, f.relPath));
      return { f, label: path.basename(fx).replace(/_\d+\.jpg$/, '') };
    });
    expect(files).toHaveLength(5);
    const synthetic = Array.from({ length: 147 }, (_, i) => frame('cam-f', i, T0 + 1000 + i));
    const roisA = [...files.slice(0, 3).map((x) => x.f.sha256), ...synthetic.map((s) => s.frame.file.sha256)].map((s, i) => roi(i + 1, s, 12.5));
    const roisB = files.slice(3).map((x, i) => roi(i + 1, x.f.sha256, null));
    const shaA = sha('frame', 1);
    const shaB = sha('frame', 2);
    segmentAndClassify(ship, cameraFrame(shaA, 'frames/frame-0001.png', roisA, 12.5, 0.002, T0), () => {
      ship.store.recordClassified(files.slice(0, 3).map((x) => classified(x.f, x.label, T0 + 500)));
      for (let i = 0; i < synthetic.length; i += 50) ship.store.recordClassified(synthetic.slice(i, i + 50));
    });
    segmentAndClassify(ship, cameraFrame(shaB, 'frames/frame-0002.png', roisB, null, null, T0 + 250), () => {
      ship.store.recordClassified(files.slice(3).map((x) => classified(x.f, x.label, T0 + 800)));
    });

    // With the navigation series on, as in the daemon: the frames' sampled volume goes as volume cells.
    // Connections die part-way through their second or third batch, then the link is down for 5 s.
    proxy.resetAfterBytes = 2500;
    const sender = await startSender(ship, proxy.url, { maxBatchBytes: 1500, maxDelayMs: 200, cameraFrames: { pollMs: 100 }, nav: { trackIntervalMs: 10_000, pollMs: 100 } });
    cleanups.push(() => sender.stop());
    await until(() => proxy.stats.resets >= 3 || undefined, 60_000, 'three resets mid-batch');
    proxy.resetAfterBytes = 0;
    proxy.outage(5000);
    await new Promise((r) => setTimeout(r, 5000));
    await until(() => {
      const s = sender.status();
      const lastSeq = shipContent(ship.dbPath).lastSeq;
      return s.queued.records === 0 && s.awaitingShore === 0 && s.shoreThrough === lastSeq && lastSeq > 0;
    }, 90_000, 'the shore to confirm every record');
    expect(proxy.stats.resets).toBeGreaterThanOrEqual(3);

    const shipDb = new Database(ship.dbPath, { readonly: true });
    const shoreDb = new Database(shore.dbPath, { readonly: true });
    cleanups.push(() => {
      shipDb.close();
      shoreDb.close();
    });
    // Exactly once: one shore record per ship sequence number, and per camera_* key.
    expect(shore.ingester.stats.records).toBe(shipContent(ship.dbPath).lastSeq);
    const kinds = shoreDb.prepare(`SELECT kind, count(*) AS n, count(DISTINCT record_key) AS keys FROM shore_records WHERE kind LIKE 'camera%' GROUP BY kind ORDER BY kind`).all();
    expect(kinds).toEqual([{ kind: 'camera_frame', n: 2, keys: 2 }, { kind: 'camera_rois', n: 5, keys: 5 }]);

    // Every ROI, with every measure as stored on the ship (axes, orientation and mean grey to 0.01; NULL µm² where unknown).
    const ours = shipDb.prepare(`SELECT f.sha256 AS frame_sha, f.id AS frame_id, r.roi_index, ${ROI_COLUMNS.split(', ').map((c) => `r.${c}`).join(', ')}
      FROM camera_frame_rois r JOIN camera_frames f ON f.id = r.camera_frame_id ORDER BY f.sha256, r.roi_index`).all() as Record<string, unknown>[];
    const theirs = shoreDb.prepare(`SELECT camera_frame_sha256 AS frame_sha, camera_frame_id AS frame_id, roi_index, ${ROI_COLUMNS}
      FROM shore_camera_frame_rois WHERE instrument = 'cam-f' ORDER BY camera_frame_sha256, roi_index`).all();
    expect(theirs).toHaveLength(152);
    const r2 = (x: unknown): number => Math.round((x as number) * 100) / 100 + 0;
    expect(theirs).toEqual(ours.map((r) => ({ ...r, major_px: r2(r.major_px), minor_px: r2(r.minor_px), orientation_deg: r2(r.orientation_deg), mean_grey: r2(r.mean_grey) })));
    const framesShip = shipDb.prepare(`SELECT sha256, id AS frame_id, rel_path, captured_at, bytes, width, height, format, pixel_size_um, volume_m3, particles AS rois FROM camera_frames ORDER BY sha256`).all();
    const framesShore = shoreDb.prepare(`SELECT sha256, frame_id, rel_path, captured_at, bytes, width, height, format, pixel_size_um, volume_m3, rois FROM shore_camera_frames WHERE instrument = 'cam-f' ORDER BY sha256`).all();
    expect(framesShore).toEqual(framesShip);

    // The EcoTaxa export of each database: the same five objects (those with images), the same cells.
    const exportRows = async (dbPath: string, out: string): Promise<Map<string, Record<string, string>>> => {
      const source = ExportSource.open(dbPath, 'cam-f');
      try {
        const summary = await exportEcoTaxa({ source, out, imageDirs: [archive], site: SITE });
        expect(summary).toMatchObject({ images: 5 });
      } finally {
        await source.close();
      }
      const lines = unzip(out).get('ecotaxa_plankwatch.tsv')!.toString('utf8').replace(/\n$/, '').split('\n').map((l) => l.split('\t'));
      expect(lines[0]).toEqual(ECOTAXA_COLUMNS.map(([n]) => n));
      const col = lines[0]!;
      return new Map(lines.slice(2).map((r) => [r[col.indexOf('object_sha256')]!, Object.fromEntries(col.map((c, i) => [c, r[i]!]))]));
    };
    const shipRows = await exportRows(ship.dbPath, path.join(dir, 'ship.zip'));
    const shoreRows = await exportRows(shore.dbPath, path.join(dir, 'shore.zip'));
    expect([...shoreRows.keys()].sort()).toEqual(files.map((x) => x.f.sha256).sort());
    const measures = ['object_area', 'object_area_um2', 'object_major', 'object_minor', 'object_angle', 'object_mean', 'object_bbox_x', 'object_bbox_y', 'object_bbox_w', 'object_bbox_h', 'object_camera_frame', 'object_camera_frame_sha256', 'process_pixel'];
    for (const [roiSha, shipRow] of shipRows) {
      const shoreRow = shoreRows.get(roiSha)!;
      // The measure cells are filled ashore, and every cell (positions, volumes and all) is the ship's.
      for (const m of measures.filter((m) => m !== 'object_area_um2' && m !== 'process_pixel')) expect(shoreRow[m], `${m} of ${roiSha}`).not.toBe('');
      expect(shoreRow).toEqual(shipRow);
    }
    const a1 = shoreRows.get(files[0]!.f.sha256)!;
    expect([a1.object_area, a1.object_area_um2, a1.process_pixel, a1.object_camera_frame, a1.object_angle]).toEqual(['207', '32343.75', '12.5', 'frames/frame-0001.png', String(Math.round((((37.123456789) % 180) - 89.999 + 180) * 100) / 100)]);
    expect([shoreRows.get(files[1]!.f.sha256)!.object_angle, shoreRows.get(files[2]!.f.sha256)!.object_angle]).toEqual(['90', '0']);
    const b1 = shoreRows.get(files[3]!.f.sha256)!;
    expect([b1.object_area_um2, b1.process_pixel, b1.object_camera_frame_sha256]).toEqual(['', '', shaB]);
  }, 180_000);

  it('queues ROI measures with their predictions and a camera frame once all its ROIs are stored, once, and reads on from its marks', () => {
    const dir = tmp('sync-cf-marks');
    let ship = openShip(dir, 'cam-m');
    const repo = (): ReturnType<Ship['store']['cameraFrameRepository']> => ship.store.cameraFrameRepository();
    const o = (): { outbox: ReturnType<Ship['store']['outboxRepository']>; instrument: string } => ({ outbox: ship.store.outboxRepository(), instrument: 'cam-m' });
    const camera = (): { kind: string; key: string; payload: string }[] =>
      ship.store.database.prepare(`SELECT kind, key, payload FROM sync_outbox WHERE kind LIKE 'camera%' ORDER BY seq`).all() as { kind: string; key: string; payload: string }[];
    const rois = Array.from({ length: 230 }, (_, i) => roi(i + 1, sha('cam-m', i), 10));
    const first = repo().recordSegmented(cameraFrame(sha('frame', 1), 'f1.png', rois, 10, 0.001, T0));
    const second = repo().recordSegmented(cameraFrame(sha('frame', 2), 'f2.png', [], null, null, T0 + 250));
    // Not done, nothing classified: nothing is queued.
    expect(queueCameraFrameRecords(o(), T0)).toBe(0);
    expect(camera()).toEqual([]);
    // Each classified batch of ROIs queues their measures in its own transaction: 50, 50, 50, 50, 30.
    ship.write(0, 230, 50, T0 + 500);
    // A ROI the camera cut itself has no place in a camera frame: no record.
    ship.write(1000, 1001, 1, T0 + 600);
    const queued = camera();
    expect(queued.map((r) => [r.kind, r.key])).toEqual([1, 51, 101, 151, 201].map((i) => ['camera_rois', `${sha('frame', 1)}:${i}`]));
    const items = queued.flatMap((r) => (JSON.parse(r.payload) as CameraRoisPayload).items);
    expect(items.map((i) => i[0])).toEqual(rois.map((r) => r.index));
    const r7 = rois[6]!;
    const r2 = (x: number): number => Math.round(x * 100) / 100;
    expect(items[6]).toEqual([7, r7.sha256, r7.x, r7.y, r7.width, r7.height, r7.areaPx, r7.areaUm2, r2(r7.majorPx), r2(r7.minorPx), r2(r7.orientationDeg), r2(r7.meanGrey)]);
    expect((JSON.parse(queued[0]!.payload) as CameraRoisPayload).frameId).toBe(first);
    // The frames, once done, in the order they were done (the empty second first).
    repo().markDone(second, { sha256: sha('frame', 2), relPath: 'f2.png', bytes: 1, mtimeMs: null }, T0 + 2000);
    expect(queueCameraFrameRecords(o(), T0 + 2001)).toBe(1);
    repo().markDone(first, { sha256: sha('frame', 1), relPath: 'f1.png', bytes: 1, mtimeMs: null }, T0 + 3000);
    expect(queueCameraFrameRecords(o(), T0 + 3001)).toBe(1);
    expect(queueCameraFrameRecords(o(), T0 + 3002)).toBe(0);
    // A restart reads on from the marks: nothing again.
    ship.close();
    ship = openShip(dir, 'cam-m');
    cleanups.push(() => ship.close());
    expect(queueCameraFrameRecords(o(), T0 + 4000)).toBe(0);
    const frames = camera().filter((r) => r.kind === 'camera_frame');
    expect(frames.map((r) => r.key)).toEqual([sha('frame', 2), sha('frame', 1)]);
    expect(JSON.parse(frames[1]!.payload) as CameraFramePayload).toEqual({ id: first, sha256: sha('frame', 1), relPath: 'f1.png', capturedAt: T0, bytes: 4_194_304 + 230, width: 2048, height: 2048, format: 'png', pixelSizeUm: 10, volumeM3: 0.001, rois: 230 });
    expect((JSON.parse(frames[0]!.payload) as CameraFramePayload).rois).toBe(0);
  });
});
