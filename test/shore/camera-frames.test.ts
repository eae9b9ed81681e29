// Camera frames and their ROIs ashore, on SQLite and on a real PostgreSQL server: each ROI stored
// once by (camera frame, index) whatever the arrival order and however often a batch comes, every
// measure as sent; then an export reads each ROI's box and measures from that database, as the
// ship's export does, and a ROI cut twice (the same bytes in two frames) is one object.
import { describe, expect, it } from 'vitest';
import type { CameraRoiItem, PredictionPayload, SyncBatch, SyncRecord } from '../../src/sync/records.js';
import { shoreDrivers } from '../helpers/shore-drivers.js';

const T0 = Date.UTC(2026, 5, 3, 12, 0, 0);
const ROI = 'c'.repeat(64);
const OTHER = 'd'.repeat(64);
const FRAME_A = 'a'.repeat(64);
const FRAME_B = 'b'.repeat(64);

function batch(records: SyncRecord[]): SyncBatch {
  return { v: 1, instrument: 'cam-c', sentAt: 0, records };
}
const prediction = (seq: number, sha: string): SyncRecord => ({
  seq,
  kind: 'prediction',
  key: `${sha}:e1`,
  at: T0,
  data: { sha256: sha, relPath: `rois/${sha.slice(0, 4)}.png`, bytes: 10, width: 40, height: 30, area: 321, format: 'png', arrivedAt: T0, classifiedAt: T0 + 10, ensembleVersion: 'e1', label: 'copepod_calanoid', probability: 0.9, margin: 0.8, disagreement: 0, topK: [['copepod_calanoid', 0.9]], members: [] } satisfies PredictionPayload,
});
const frameRecord = (seq: number, id: number, sha: string, pixelSizeUm: number | null): SyncRecord => ({
  seq, kind: 'camera_frame', key: sha, at: T0,
  data: { id, sha256: sha, relPath: `frames/${id}.png`, capturedAt: T0 + id, bytes: 4_000_000, width: 2048, height: 2048, format: 'png', pixelSizeUm, volumeM3: pixelSizeUm === null ? null : 0.002, rois: 2 },
});
// Measures as the ship sends them, a negative orientation, and a NULL µm² area.
const itemA1: CameraRoiItem = [1, ROI, 100, 200, 31, 17, 207, 32343.75, 20.448798950512828, 8.247116529027954, -52.875543211, 53.3];
const itemA2: CameraRoiItem = [2, OTHER, 5, 6, 7, 8, 40, 6250, 9.1, 4.2, 90, 120.125];
const itemB1: CameraRoiItem = [1, ROI, 900, 800, 31, 17, 210, null, 21, 8, 10, 60];
const roisRecord = (seq: number, frameId: number, frameSha: string, items: CameraRoiItem[]): SyncRecord => ({
  seq, kind: 'camera_rois', key: `${frameSha}:${items[0]![0]}`, at: T0, data: { frameId, frameSha256: frameSha, items },
});

const drivers = shoreDrivers('shore-cf');

describe.each(drivers)('camera frames ashore on $name', (driver) => {
  it('stores each ROI once with its measures, whatever the order and resends, and exports them', async () => {
    const location = await driver.fresh();
    const s = driver.store(location);
    await s.open();
    await s.apply(batch([prediction(1, ROI), prediction(2, OTHER)]));
    // The ROIs before their frame (another batch, another ingester), then the frames; later the same
    // ROI's bytes cut again from frame B.
    const rA = roisRecord(4, 7, FRAME_A, [itemA1, itemA2]);
    const fA = frameRecord(3, 7, FRAME_A, 12.5);
    const fB = frameRecord(5, 9, FRAME_B, null);
    const rB = roisRecord(6, 9, FRAME_B, [itemB1]);
    expect(await s.apply(batch([rA]))).toEqual({ added: 1, duplicates: 0 });
    expect(await s.apply(batch([fA, fB, rB]))).toEqual({ added: 3, duplicates: 0 });
    // A resend of everything changes nothing.
    expect(await s.apply(batch([fA, rA, fB, rB]))).toEqual({ added: 0, duplicates: 4 });
    const num = (rows: Record<string, unknown>[]): Record<string, unknown>[] => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^-?[\d.]+$/.test(v) ? Number(v) : v])));
    const rois = num(await s.query(`SELECT camera_frame_sha256, roi_index, camera_frame_id, sha256, x, y, width, height, area_px, area_um2, major_px, minor_px, orientation_deg, mean_grey
      FROM shore_camera_frame_rois ORDER BY camera_frame_sha256, roi_index`));
    const row = (frameSha: string, frameId: number, i: CameraRoiItem): Record<string, unknown> => ({
      camera_frame_sha256: frameSha, roi_index: i[0], camera_frame_id: frameId, sha256: i[1], x: i[2], y: i[3], width: i[4], height: i[5],
      area_px: i[6], area_um2: i[7], major_px: i[8], minor_px: i[9], orientation_deg: i[10], mean_grey: i[11],
    });
    expect(rois).toEqual([row(FRAME_A, 7, itemA1), row(FRAME_A, 7, itemA2), row(FRAME_B, 9, itemB1)]);
    expect(num(await s.query(`SELECT sha256, frame_id, pixel_size_um, volume_m3, rois FROM shore_camera_frames ORDER BY sha256`))).toEqual([
      { sha256: FRAME_A, frame_id: 7, pixel_size_um: 12.5, volume_m3: 0.002, rois: 2 },
      { sha256: FRAME_B, frame_id: 9, pixel_size_um: null, volume_m3: null, rois: 2 },
    ]);
    await s.close();

    const source = await driver.source(location);
    const objects = [];
    for await (const o of source.objects()) objects.push(o);
    await source.close();
    // Two objects: the ROI cut twice is one, with its place in the first frame (by ship id).
    expect(objects.map((o) => o.sha256).sort()).toEqual([ROI, OTHER]);
    const first = objects.find((o) => o.sha256 === ROI)!;
    expect(first.cameraFrame).toEqual({
      relPath: 'frames/7.png', sha256: FRAME_A, x: 100, y: 200, width: 31, height: 17, areaPx: 207,
      majorPx: itemA1[8], minorPx: itemA1[9], orientationDeg: itemA1[10], meanGrey: itemA1[11], pixelSizeUm: 12.5,
    });
    expect(objects.find((o) => o.sha256 === OTHER)!.cameraFrame).toMatchObject({ x: 5, orientationDeg: 90, pixelSizeUm: 12.5 });
  });
});
