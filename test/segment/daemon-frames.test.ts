// The daemon as a technician runs it, with ingest.mode "frames": whole camera frames composed from
// real NDSB ROIs dropped into the watch folder, plus bad frames (truncated, 16-bit, all black, all
// white) and a second name for one frame. Every ROI must be classified and stored with its camera
// frame and its box; each camera frame once, with its statistics and its sampled volume; the bad
// frames quarantined with their codes.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { daemonDirs, startDaemon, until } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { compose, loadRois, roiFiles, score, type Composed } from '../../src/bench/compose-frames.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function png(frame: Composed, bits: 8 | 16 = 8): Promise<Buffer> {
  const raw = sharp(Buffer.from(frame.gray), { raw: { width: frame.width, height: frame.height, channels: 1 } });
  return bits === 8 ? raw.png().toBuffer() : raw.toColourspace('grey16').png().toBuffer();
}

interface RoiRow {
  camera: string;
  x: number;
  y: number;
  width: number;
  height: number;
  area_px: number;
  area_um2: number | null;
  major_um: number | null;
  rel_path: string;
  label: string | null;
}

describe('the daemon with ingest.mode "frames"', () => {
  it('cuts camera frames into ROIs, classifies and stores each with its frame and box, quarantines bad frames', async () => {
    const rois = await loadRois(roiFiles(path.join(REPO, 'test/fixtures/ndsb'), 1000));
    const scene = { width: 1024, height: 768, level: 215, polarity: 'bright-field' as const, lightSeed: 7, vignette: 0.3, gradient: 0.1, banding: 0, noise: 3 };
    const frames = [0, 1, 2].map((i) => compose({ ...scene, seed: 500 + i }, rois, 12));
    const port = await freePort();
    const dirs = daemonDirs({
      ingest: { mode: 'frames' },
      segment: { background: 'local', frameVolumeL: 2 },
      camera: { pixelSizeUm: 10 },
      publish: { embeddedPort: port },
    });
    const daemon = startDaemon(dirs.config);
    cleanups.push(() => {
      if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    });
    const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    const http = String(ready.http);

    const good = await Promise.all(frames.map((f) => png(f)));
    for (const [i, bytes] of good.entries()) writeFileSync(path.join(dirs.incoming, `frame-${i}.png`), bytes);
    writeFileSync(path.join(dirs.incoming, 'again.png'), good[0]!); // the same bytes, another name
    writeFileSync(path.join(dirs.incoming, 'truncated.png'), good[1]!.subarray(0, Math.floor(good[1]!.length / 2)));
    writeFileSync(path.join(dirs.incoming, 'sixteen-bit.png'), await png(frames[2]!, 16));
    const flat = (v: number) => ({ ...frames[0]!, gray: new Uint8Array(frames[0]!.gray.length).fill(v) });
    writeFileSync(path.join(dirs.incoming, 'black.png'), await png(flat(0)));
    writeFileSync(path.join(dirs.incoming, 'white.png'), await png(flat(255)));

    const db = () => new Database(dirs.db, { readonly: true, fileMustExist: true });
    await until(
      () => {
        if (!existsSync(dirs.db)) return false;
        const d = db();
        try {
          const done = (d.prepare('SELECT count(*) AS n FROM camera_frames WHERE done_at IS NOT NULL').get() as { n: number }).n;
          const rejects = (d.prepare('SELECT count(*) AS n FROM rejects').get() as { n: number }).n;
          const dup = (d.prepare("SELECT count(*) AS n FROM camera_frame_sources WHERE role = 'duplicate'").get() as { n: number }).n;
          return done === 3 && rejects === 4 && dup === 1;
        } finally {
          d.close();
        }
      },
      120_000,
      'three camera frames done, four rejected, one duplicate',
    );

    const d = db();
    try {
      const cameraFrames = d.prepare('SELECT id, rel_path, particles, volume_m3, width, height FROM camera_frames ORDER BY rel_path').all() as {
        id: number;
        rel_path: string;
        particles: number;
        volume_m3: number;
        width: number;
        height: number;
      }[];
      // frame-0.png and again.png hold the same bytes: whichever came first is the camera frame.
      const indexOf = (relPath: string) => (relPath === 'again.png' ? 0 : Number(/frame-(\d)/.exec(relPath)![1]));
      expect(cameraFrames.map((f) => indexOf(f.rel_path)).sort()).toEqual([0, 1, 2]);
      const stored = d
        .prepare(
          `SELECT c.rel_path AS camera, r.x, r.y, r.width, r.height, r.area_px, r.area_um2, r.major_um, r.rel_path, p.label
           FROM camera_frame_rois r JOIN camera_frames c ON c.id = r.camera_frame_id
           LEFT JOIN frames f ON f.sha256 = r.sha256 LEFT JOIN predictions p ON p.frame_id = f.id`,
        )
        .all() as RoiRow[];
      for (const cf of cameraFrames) {
        const i = indexOf(cf.rel_path);
        const mine = stored.filter((r) => r.camera === cf.rel_path);
        expect(mine.length, cf.rel_path).toBe(cf.particles);
        // Every ROI classified and stored, as a frames row with a prediction.
        expect(mine.every((r) => typeof r.label === 'string'), `${cf.rel_path}: every ROI has a label`).toBe(true);
        // The boxes are the organisms pasted there (those of at least 20 px), as in segmenter.test.ts.
        const s = score(frames[i]!.truth, mine);
        expect(s.recall, cf.rel_path).toBeGreaterThanOrEqual(0.9);
        expect(s.precision, cf.rel_path).toBeGreaterThanOrEqual(0.9);
        expect(cf.volume_m3).toBeCloseTo(0.002, 9);
        expect([cf.width, cf.height]).toEqual([1024, 768]);
      }
      // Physical sizes from camera.pixelSizeUm (10 um): 100 um2 a pixel.
      for (const r of stored) {
        expect(r.area_um2).toBeCloseTo(r.area_px * 100, 6);
        expect(r.major_um).toBeGreaterThan(0);
        expect(existsSync(path.join(dirs.archive, ...r.rel_path.split('/'))), r.rel_path).toBe(true);
      }
      // One volume sample per camera frame, for the concentrations.
      const volumes = d.prepare("SELECT count(*) AS n, sum(volume_m3) AS v FROM volume_samples WHERE source = 'camera-frame' AND camera_frame_id IS NOT NULL").get() as { n: number; v: number };
      expect(volumes.n).toBe(3);
      expect(volumes.v).toBeCloseTo(0.006, 9);
      const rejects = d.prepare('SELECT rel_path, code FROM rejects ORDER BY rel_path').all() as { rel_path: string; code: string }[];
      expect(rejects).toEqual([
        { rel_path: 'black.png', code: 'PW_E_FRAME_BLANK' },
        { rel_path: 'sixteen-bit.png', code: 'PW_E_FRAME_BIT_DEPTH' },
        { rel_path: 'truncated.png', code: 'PW_E_IMAGE_CORRUPT' },
        { rel_path: 'white.png', code: 'PW_E_FRAME_BLANK' },
      ]);
    } finally {
      d.close();
    }
    // Camera frames archived, bad ones quarantined.
    await until(() => existsSync(path.join(dirs.archive, 'frame-2.png')) && existsSync(path.join(dirs.archive, 'again.png')) && existsSync(path.join(dirs.quarantine, 'white.png')), 30_000, 'files disposed of');

    // The review API shows an ROI in its camera frame: its place, and the frame with its box drawn.
    const roi = (() => {
      const d2 = db();
      try {
        return d2.prepare("SELECT r.sha256, r.x, r.y, r.width, r.height FROM camera_frame_rois r JOIN camera_frames c ON c.id = r.camera_frame_id WHERE c.rel_path = 'frame-1.png' ORDER BY r.roi_index LIMIT 1").get() as { sha256: string; x: number; y: number; width: number; height: number };
      } finally {
        d2.close();
      }
    })();
    const place = (await (await fetch(`${http}/api/frames/${roi.sha256}/camera-frame`)).json()) as { cameraFrame: { relPath: string; width: number }; box: { x: number; y: number; width: number; height: number } };
    expect(place.cameraFrame).toMatchObject({ relPath: 'frame-1.png', width: 1024 });
    expect(place.box).toEqual({ x: roi.x, y: roi.y, width: roi.width, height: roi.height });
    const shown = await fetch(`${http}/api/frames/${roi.sha256}/camera-frame/image?width=512`);
    expect(shown.status).toBe(200);
    expect(shown.headers.get('content-type')).toBe('image/jpeg');
    const { data, info } = await sharp(Buffer.from(await shown.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([512, 384]);
    // The box is drawn in red at half scale around the ROI: a red pixel on its left edge, mid-height.
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    const edge = Array.from({ length: 6 }, (_, k) => at(Math.max(0, Math.floor(roi.x / 2) - 5 + k), Math.floor((roi.y + roi.height / 2) / 2)));
    expect(edge.some(([r, g, b]) => r! > 150 && r! - g! > 80 && r! - b! > 80), JSON.stringify(edge)).toBe(true);
    // Camera frame counts in /metrics: all time from the database, and ROIs a frame since the start.
    const metrics = await (await fetch(`${http}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
    const roisCut = (() => {
      const d3 = db();
      try {
        return (d3.prepare('SELECT count(*) AS n FROM camera_frame_rois').get() as { n: number }).n;
      } finally {
        d3.close();
      }
    })();
    expect(roisCut).toBeGreaterThanOrEqual(15);
    expect(metric('plankwatch_camera_frames_total{outcome="segmented"}')).toBe(3);
    expect(metric('plankwatch_camera_frames_total{outcome="duplicate"}')).toBe(1);
    expect(metric('plankwatch_camera_frames_total{outcome="quarantined"}')).toBe(4);
    expect(metric('plankwatch_camera_frame_rois_total')).toBe(roisCut);
    expect(metric('plankwatch_camera_frame_rois_count')).toBe(3);
    expect(metric('plankwatch_camera_frame_rois_sum')).toBe(roisCut);

    // An ROI the camera did not cut from a frame: 404 with its code.
    const none = await fetch(`${http}/api/frames/${'0'.repeat(64)}/camera-frame`);
    expect(none.status).toBe(404);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('PW_E_REVIEW_NOT_FOUND');
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);

    // plankwatch status counts the camera frames too.
    const status = spawnSync(process.execPath, [path.join(REPO, 'bin/plankwatch.js'), 'status', '--json', '--config', dirs.config], { encoding: 'utf8' });
    expect(status.status, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { cameraFrames: unknown }).cameraFrames).toEqual({ segmented: 3, done: 3, rois: roisCut, duplicates: 1, quarantined: 4, roisPerFrame: Math.round((roisCut / 3) * 10000) / 10000 });
    const text = spawnSync(process.execPath, [path.join(REPO, 'bin/plankwatch.js'), 'status', '--config', dirs.config], { encoding: 'utf8' }).stdout;
    expect(text).toContain('camera frames  3 segmented, 1 duplicates, 4 quarantined');
    expect(text).toContain(`ROIs cut     ${roisCut} (${(roisCut / 3).toFixed(1)} a frame)`);
  }, 240_000);
});
