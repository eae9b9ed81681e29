// The segment stage with a real SQLite store and its real segmentation thread: a camera frame whose
// ROIs could not all be stored is taken up again with the same ROIs (not segmented anew), and is
// settled once; the same bytes again are a duplicate; a bad frame is rejected with its code.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_SEGMENT_SETTINGS } from '../../src/segment/index.js';
import { SegmentStage, type SegmentStageHooks } from '../../src/segment/stage.js';
import { Store } from '../../src/store/index.js';
import type { IncomingFile } from '../../src/types.js';
import { compose, loadRois, roiFiles } from '../../src/bench/compose-frames.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function cameraFile(dir: string, name: string, bytes: Buffer): Promise<IncomingFile> {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return { path: file, relPath: name, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length, arrivedAt: Date.now(), mtimeMs: 1_765_000_000_000 };
}

describe('SegmentStage', () => {
  it('takes a frame up again with the same ROIs after a failure, settles it once, and knows its duplicate', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pw-segment-stage-'));
    const store = new Store({ path: path.join(root, 'db.sqlite'), countsWindowMs: 60_000, logger: silentLogger() });
    store.start();
    cleanups.push(() => store.stop());
    const rois = await loadRois(roiFiles(path.join(REPO, 'test/fixtures/ndsb'), 1000));
    const frame = compose({ width: 800, height: 600, level: 215, polarity: 'bright-field', lightSeed: 7, vignette: 0.2, gradient: 0.1, banding: 0, noise: 3, seed: 21 }, rois, 8);
    const png = await sharp(Buffer.from(frame.gray), { raw: { width: 800, height: 600, channels: 1 } }).png().toBuffer();

    const stored = new Set<string>();
    let failNext = true;
    const events: string[] = [];
    const classified: string[][] = [[]];
    const hooks: SegmentStageHooks = {
      classify: async (roi) => {
        classified.at(-1)!.push(roi.sha256);
        if (!failNext) stored.add(roi.sha256); // the first time, as if the classify thread had died
      },
      roiStored: (sha256) => stored.has(sha256),
      reject: (file, code) => events.push(`reject ${file.relPath} ${code}`),
      settled: (file, outcome) => events.push(`settled ${file.relPath} ${outcome}`),
      failed: (file, err) => events.push(`failed ${file.relPath} ${(err as { code?: string }).code}`),
    };
    const stage = new SegmentStage({
      settings: { ...DEFAULT_SEGMENT_SETTINGS, background: 'local' },
      pixelSizeUm: 0,
      frameVolumeL: 0,
      maxPixels: 25_000_000,
      roiRoot: path.join(root, 'archive'),
      repository: store.cameraFrameRepository(),
      hooks,
      logger: silentLogger(),
    });
    await stage.start();
    cleanups.push(() => stage.stop());

    const file = await cameraFile(root, 'frame.png', png);
    await stage.handle(file);
    expect(events).toEqual(['failed frame.png PW_E_SEGMENT']);
    const repo = store.cameraFrameRepository();
    const first = repo.bySha(file.sha256)!;
    expect(first.doneAt).toBeNull();
    const firstRois = repo.roisOf(first.id).map((r) => r.sha256);
    expect(firstRois.length).toBeGreaterThanOrEqual(5);
    expect(new Set(classified[0])).toEqual(new Set(firstRois));

    // The next scan: the same ROIs, from their recorded images, not a new segmentation.
    failNext = false;
    classified.push([]);
    await stage.handle({ ...file, arrivedAt: Date.now() });
    expect(events.at(-1)).toBe('settled frame.png processed');
    expect(new Set(classified[1])).toEqual(new Set(firstRois));
    expect(repo.roisOf(first.id).map((r) => r.sha256)).toEqual(firstRois);
    expect(repo.bySha(file.sha256)!.doneAt).not.toBeNull();
    expect(repo.sourceOutcome('frame.png', png.length, 1_765_000_000_000)).toBe('processed');

    // The same bytes under another name: a duplicate, nothing classified.
    classified.push([]);
    await stage.handle(await cameraFile(root, 'copy.png', png));
    expect(events.at(-1)).toBe('settled copy.png duplicate');
    expect(classified[2]).toEqual([]);

    // A blank frame: rejected with its code.
    await stage.handle(await cameraFile(root, 'black.png', await sharp(Buffer.alloc(800 * 600), { raw: { width: 800, height: 600, channels: 1 } }).png().toBuffer()));
    expect(events.at(-1)).toBe('reject black.png PW_E_FRAME_BLANK');
  }, 60_000);
});
