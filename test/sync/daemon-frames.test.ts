// The real daemon (child process) with ingest.mode "frames" and sync on, to a real Mosquitto and a
// shore ingester: a whole camera frame composed from real NDSB ROIs is cut, each ROI classified,
// stored and sent; ashore every ROI has its place and measures, the frame its statistics, and the
// EcoTaxa export of the shore database has the ship's cells.
import { renameSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { compose, loadRois, roiFiles } from '../../src/bench/compose-frames.js';
import { ECOTAXA_COLUMNS, exportEcoTaxa } from '../../src/export/ecotaxa.js';
import { ExportSource } from '../../src/export/source.js';
import { saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { unzip } from '../export/unzip.js';
import { daemonDirs, REPO_ROOT, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { shipContent, shoreContent, tmp, until } from './helpers.js';
import { startShore } from './shore-harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
const running: DaemonProcess[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) if (d.child.exitCode === null) d.child.kill('SIGKILL');
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SITE = { latitude: '25.7', longitude: '-80.1', depthMinM: '5', depthMaxM: '40', cruise: 'WS1406', institution: 'OSU' };

describe('daemon with whole camera frames and sync on', () => {
  it('sends each ROI cut from a camera frame ashore with its measures; the shore export has the ship\'s cells', async () => {
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const shore = await startShore(tmp('daemon-frames-shore'), broker.url);
    cleanups.push(() => shore.stop());
    // An untrained tiny ensemble: this test is about the measures' journey, not the labels.
    const models = await tempModelsDir();
    await saveTinyMember(models, { name: 'tiny', version: 'v1', classes: ['copepod', 'detritus', 'diatom'], size: 32, seed: 3 });
    const ensemble = await writeEnsemble(models, { version: 'frames-sync', voting: 'soft', members: [{ name: 'tiny', version: 'v1' }] });
    const dirs = daemonDirs({
      ingest: { mode: 'frames' },
      segment: { background: 'local', frameVolumeL: 2 },
      camera: { pixelSizeUm: 10 },
      classify: { ensemble, modelsDir: models, workers: 1 },
      publish: { embeddedPort: await freePort() },
      sync: { enabled: true, url: broker.url, countsHoldS: 0, resendAfterS: 5, maxDelayS: 1 },
    });
    const daemon = startDaemon(dirs.config);
    running.push(daemon);
    await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);

    const rois = await loadRois(roiFiles(path.join(REPO_ROOT, 'test/fixtures/ndsb'), 1000));
    const scene = { width: 1024, height: 768, level: 215, polarity: 'bright-field' as const, lightSeed: 7, vignette: 0.3, gradient: 0.1, banding: 0, noise: 3, seed: 501 };
    const frame = compose(scene, rois, 12);
    const png = await sharp(Buffer.from(frame.gray), { raw: { width: frame.width, height: frame.height, channels: 1 } }).png().toBuffer();
    // Taken ten minutes ago (its mtime is its capture time): its sampled volume, at a depth nobody
    // fills in here, goes ashore without waiting for one.
    const staged = path.join(dirs.root, 'frame-0001.png');
    writeFileSync(staged, png);
    const taken = new Date(Date.now() - 600_000);
    utimesSync(staged, taken, taken);
    renameSync(staged, path.join(dirs.incoming, 'frame-0001.png'));

    // The frame done on the ship, and every record it made held ashore.
    await until(() => {
      const d = new Database(dirs.db, { readonly: true, fileMustExist: true });
      try {
        return (d.prepare('SELECT count(*) AS n FROM camera_frames WHERE done_at IS NOT NULL').get() as { n: number }).n === 1 || undefined;
      } finally {
        d.close();
      }
    }, 120_000, 'the camera frame done');
    await until(() => {
      const ship = shipContent(dirs.db);
      const s = shoreContent(shore.dbPath, 'test-cam');
      const d = new Database(shore.dbPath, { readonly: true });
      try {
        const frames = (d.prepare(`SELECT count(*) AS n FROM shore_camera_frames`).get() as { n: number }).n;
        const volumes = (d.prepare(`SELECT count(*) AS n FROM shore_volumes`).get() as { n: number }).n;
        return (ship.lastSeq > 0 && s.records === ship.lastSeq && frames === 1 && volumes > 0) || undefined;
      } finally {
        d.close();
      }
    }, 60_000, 'the shore to hold every record and the camera frame');

    const shipDb = new Database(dirs.db, { readonly: true });
    const shoreDb = new Database(shore.dbPath, { readonly: true });
    cleanups.push(() => {
      shipDb.close();
      shoreDb.close();
    });
    const ours = shipDb.prepare(`SELECT f.sha256 AS frame_sha, r.roi_index, r.sha256, r.x, r.y, r.width, r.height, r.area_px, r.area_um2, r.major_px, r.minor_px, r.orientation_deg, r.mean_grey
      FROM camera_frame_rois r JOIN camera_frames f ON f.id = r.camera_frame_id ORDER BY r.roi_index`).all() as Record<string, number>[];
    const theirs = shoreDb.prepare(`SELECT camera_frame_sha256 AS frame_sha, roi_index, sha256, x, y, width, height, area_px, area_um2, major_px, minor_px, orientation_deg, mean_grey
      FROM shore_camera_frame_rois WHERE instrument = 'test-cam' ORDER BY roi_index`).all();
    expect(ours.length).toBeGreaterThanOrEqual(8);
    const r2 = (x: number): number => Math.round(x * 100) / 100 + 0;
    expect(theirs).toEqual(ours.map((r) => ({ ...r, major_px: r2(r.major_px!), minor_px: r2(r.minor_px!), orientation_deg: r2(r.orientation_deg!), mean_grey: r2(r.mean_grey!) })));
    expect(ours.every((r) => r.area_um2 === r.area_px! * 100)).toBe(true);
    expect(shoreDb.prepare(`SELECT rel_path, pixel_size_um, volume_m3, rois FROM shore_camera_frames`).get()).toEqual({ rel_path: 'frame-0001.png', pixel_size_um: 10, volume_m3: 0.002, rois: ours.length });

    // EcoTaxa from each database, images from the ship's archive: the same rows, cell for cell, but
    // object_probability (predictions travel to 4 decimals).
    const probability = ECOTAXA_COLUMNS.findIndex(([n]) => n === 'object_probability');
    const rows = async (dbPath: string, out: string): Promise<string[][]> => {
      const source = ExportSource.open(dbPath, 'test-cam');
      try {
        await exportEcoTaxa({ source, out, imageDirs: [dirs.archive], site: SITE });
      } finally {
        await source.close();
      }
      return unzip(out).get('ecotaxa_plankwatch.tsv')!.toString('utf8').replace(/\n$/, '').split('\n')
        .map((l) => l.split('\t').map((cell, i) => (i === probability && /^[\d.]+$/.test(cell) ? String(Math.round(Number(cell) * 10_000) / 10_000) : cell)))
        .sort((a, b) => a.join().localeCompare(b.join()));
    };
    const shipRows = await rows(dirs.db, path.join(dirs.root, 'ship.zip'));
    const shoreRows = await rows(shore.dbPath, path.join(dirs.root, 'shore.zip'));
    expect(shipRows).toHaveLength(ours.length + 2);
    expect(shoreRows).toEqual(shipRows);
    const header = ECOTAXA_COLUMNS.map(([n]) => n);
    const bbox = header.indexOf('object_bbox_w');
    expect(shoreRows.filter((r) => r[bbox] !== '' && r[bbox] !== '[f]' && r[bbox] !== 'object_bbox_w')).toHaveLength(ours.length);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 240_000);
});
