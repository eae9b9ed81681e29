// An ROI cut from a camera frame is written as a gray PNG and handed to classification with its
// pixels in memory, not read back and decoded. What the classifier gets must be exactly what it
// would get from the file: the same pixels, the same prepared inputs, the same area.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { compose, loadRois, roiFiles } from '../../src/bench/compose-frames.js';
import { mulberry32 } from '../../src/learn/random.js';
import { silentLogger } from '../../src/log.js';
import { preprocessDecoded, preprocessFrame, type GrayImage } from '../../src/preprocess/index.js';
import { decodeGray } from '../../src/preprocess/decode.js';
import { DEFAULT_SEGMENT_SETTINGS } from '../../src/segment/index.js';
import { encodeGrayPng } from '../../src/segment/png.js';
import { SegmentStage } from '../../src/segment/stage.js';
import { Store } from '../../src/store/index.js';
import type { IncomingFile } from '../../src/types.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The shipped ensemble's inputs (keep-size 80; 96, 64, 80 enlarged to fit), and a colour one. */
const INPUTS = [
  { size: 80, spec: { background: 255, noUpscale: true, invert: true } },
  { size: 96, spec: { background: 255, noUpscale: false, invert: true } },
  { size: 64, spec: { background: 255, noUpscale: false, invert: true } },
  { size: 80, spec: { background: 255, noUpscale: false, invert: true } },
  { size: 48, spec: { background: 255, noUpscale: false, invert: true }, channels: 3 as const },
];

describe('ROI crops as gray PNG', () => {
  it('decode to the very pixels encoded, in one channel, whatever the shape', async () => {
    const rand = mulberry32(5);
    for (const [width, height] of [[1, 1], [1, 9], [9, 1], [83, 94], [300, 5], [257, 256]] as const) {
      const gray = new Uint8Array(width * height);
      for (let i = 0; i < gray.length; i++) gray[i] = i % 7 === 0 ? Math.floor(rand() * 256) : 200 + (i % 50);
      const png = encodeGrayPng(gray, width, height);
      const meta = await sharp(png).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels, meta.depth]).toEqual(['png', width, height, 1, 'uchar']);
      const back = await decodeGray(png, { maxPixels: 1e8 });
      expect(Buffer.from(back.gray).equals(Buffer.from(gray))).toBe(true);
    }
  });

  it('reach classification with the pixels and prepared inputs their files give', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pw-roi-pixels-'));
    const store = new Store({ path: path.join(root, 'db.sqlite'), countsWindowMs: 60_000, logger: silentLogger() });
    store.start();
    cleanups.push(() => store.stop());
    const rois = await loadRois(roiFiles(path.join(REPO, 'test/fixtures/ndsb'), 1000));
    const frame = compose({ width: 800, height: 600, level: 215, polarity: 'bright-field', lightSeed: 7, vignette: 0.2, gradient: 0.1, banding: 0, noise: 3, seed: 33 }, rois, 8);
    const png = await sharp(Buffer.from(frame.gray), { raw: { width: 800, height: 600, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    const framePath = path.join(root, 'frame.png');
    writeFileSync(framePath, png);

    const handed: { roi: IncomingFile; decoded: GrayImage | undefined }[] = [];
    const stored = new Set<string>();
    const stage = new SegmentStage({
      settings: { ...DEFAULT_SEGMENT_SETTINGS, background: 'local' },
      pixelSizeUm: 0,
      frameVolumeL: 0,
      maxPixels: 25_000_000,
      roiRoot: path.join(root, 'archive'),
      repository: store.cameraFrameRepository(),
      hooks: {
        classify: async (roi, decoded) => {
          handed.push({ roi, decoded });
          stored.add(roi.sha256);
        },
        roiStored: (sha256) => stored.has(sha256),
        reject: () => undefined,
        settled: () => undefined,
        failed: (_file, err) => {
          throw err;
        },
      },
      logger: silentLogger(),
    });
    await stage.start();
    cleanups.push(() => stage.stop());
    await stage.handle({ path: framePath, relPath: 'frame.png', sha256: createHash('sha256').update(png).digest('hex'), bytes: png.length, arrivedAt: Date.now() });

    expect(handed.length).toBeGreaterThanOrEqual(5);
    for (const { roi, decoded } of handed) {
      expect(decoded).toBeDefined();
      const bytes = readFileSync(roi.path);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(roi.sha256);
      const fromFile = await preprocessFrame(roi, bytes, { maxPixels: 25_000_000, inputs: INPUTS });
      const inMemory = preprocessDecoded(roi, decoded!, { maxPixels: 25_000_000, inputs: INPUTS });
      expect([inMemory.width, inMemory.height, inMemory.area, inMemory.polarity, inMemory.format]).toEqual([fromFile.width, fromFile.height, fromFile.area, fromFile.polarity, fromFile.format]);
      expect([...inMemory.inputs.keys()]).toEqual([...fromFile.inputs.keys()]);
      for (const [key, prepared] of fromFile.inputs) expect(Buffer.from(inMemory.inputs.get(key)!.pixels.buffer).equals(Buffer.from(prepared.pixels.buffer))).toBe(true);
    }
  }, 60_000);
});
