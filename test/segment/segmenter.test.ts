// Segmentation measured on camera frames composed from real NDSB ROIs pasted at known places on
// realistic backgrounds (test/segment/compose.ts): uneven illumination, line-scan banding, dark
// field, heavy noise. Each organism at least 20 px long must be found (recall), each ROI must be an
// organism (precision), and the boxes must fit (IoU). The committed fixture subset gives the same
// figures on every machine; the full NDSB set, when present, is measured too.
import path from 'node:path';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_SEGMENT_SETTINGS, FrameSegmenter, loadOpenCv, SegmentThread, type Cv, type SegmentSettings } from '../../src/segment/index.js';
import { compose, loadRois, roiFiles, score, type Roi, type Scene, type Score } from '../../src/bench/compose-frames.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(REPO, 'test/fixtures/ndsb');
const FULL = process.env.PLANKWATCH_NDSB_DIR ?? path.resolve(REPO, '../shared/data/ndsb');

const FRAMES = 6;
const PER_FRAME = 20;

interface Case {
  name: string;
  scene: Omit<Scene, 'seed'>;
  settings: Partial<SegmentSettings>;
}

const base = { width: 1024, height: 1024, level: 215, polarity: 'bright-field' as const, lightSeed: 7, vignette: 0, gradient: 0, banding: 0, noise: 3 };
const CASES: Case[] = [
  { name: 'uneven illumination, running background', scene: { ...base, vignette: 0.35, gradient: 0.15 }, settings: { background: 'running' } },
  { name: 'line-scan banding, per-column background', scene: { ...base, banding: 0.15 }, settings: { background: 'columns' } },
  { name: 'dark field, running background', scene: { ...base, polarity: 'dark-field', level: 20, vignette: 0.3, gradient: 0.1 }, settings: { background: 'running', polarity: 'dark-field' } },
];
// A noisy camera wants a higher threshold (docs/segmentation.md: about 3 times the noise's standard deviation).
const NOISY: Case = { name: 'heavy noise (sigma 6) with banding, local background, threshold 20', scene: { ...base, vignette: 0.2, gradient: 0.1, banding: 0.05, noise: 6 }, settings: { background: 'local', threshold: 20 } };

let cv: Cv;
beforeAll(async () => {
  ({ cv } = await loadOpenCv());
});

function run(c: Case, rois: Roi[], frames = FRAMES): Score {
  const seg = new FrameSegmenter(cv, { ...DEFAULT_SEGMENT_SETTINGS, ...c.settings });
  const truth: Parameters<typeof score>[0] = [];
  const found: Parameters<typeof score>[1] = [];
  try {
    for (let f = 0; f < frames; f++) {
      const frame = compose({ ...c.scene, seed: 1000 + f }, rois, PER_FRAME);
      const out = seg.segment(frame.gray, frame.width, frame.height);
      // Offset each frame so that the pooled boxes of different frames never meet.
      const dx = f * 10_000;
      truth.push(...frame.truth.map((t) => ({ ...t, x: t.x + dx })));
      found.push(...out.rois.map((r) => ({ x: r.x + dx, y: r.y, width: r.width, height: r.height })));
    }
  } finally {
    seg.dispose();
  }
  return score(truth, found);
}

function report(set: string, name: string, s: Score): void {
  console.log(
    `[segment] ${set} | ${name}: ${s.truths} organisms >= 20 px, ${s.detections} ROIs, recall ${(100 * s.recall).toFixed(1)}%, ` +
      `precision ${(100 * s.precision).toFixed(1)}%, mean IoU ${s.meanIou.toFixed(3)}, IoU >= 0.8 for ${(100 * s.iouAbove08).toFixed(1)}%`,
  );
}

describe('segmentation of composed frames (committed NDSB fixture subset)', () => {
  let rois: Roi[];
  beforeAll(async () => {
    rois = await loadRois(roiFiles(FIXTURES, 1000));
  });

  it('finds >= 95% of the organisms, >= 95% of ROIs are organisms, boxes fit (mean IoU >= 0.8)', () => {
    const pooled = { truths: 0, detections: 0, matched: 0, iou: 0 };
    for (const c of CASES) {
      const s = run(c, rois);
      report('fixtures', c.name, s);
      expect(s.recall, c.name).toBeGreaterThanOrEqual(0.95);
      expect(s.precision, c.name).toBeGreaterThanOrEqual(0.95);
      expect(s.meanIou, c.name).toBeGreaterThanOrEqual(0.8);
      pooled.truths += s.truths;
      pooled.detections += s.detections;
      pooled.matched += s.matched;
      pooled.iou += s.meanIou * s.matched;
    }
    const recall = pooled.matched / pooled.truths;
    const precision = pooled.matched / pooled.detections;
    console.log(`[segment] fixtures | pooled: recall ${(100 * recall).toFixed(1)}%, precision ${(100 * precision).toFixed(1)}%, mean IoU ${(pooled.iou / pooled.matched).toFixed(3)}`);
    expect(pooled.truths).toBeGreaterThan(200);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    expect(precision).toBeGreaterThanOrEqual(0.95);
    expect(pooled.iou / pooled.matched).toBeGreaterThanOrEqual(0.8);
  });

  it('does as well under heavy noise with the threshold raised for it', () => {
    const s = run(NOISY, rois);
    report('fixtures', NOISY.name, s);
    expect(s.recall).toBeGreaterThanOrEqual(0.95);
    expect(s.precision).toBeGreaterThanOrEqual(0.95);
    expect(s.meanIou).toBeGreaterThanOrEqual(0.8);
  });

  it('measures each organism: area, axes from its moments, mean grey, crop with margin', () => {
    const seg = new FrameSegmenter(cv, { ...DEFAULT_SEGMENT_SETTINGS, background: 'local' });
    try {
      const frame = compose({ ...CASES[0]!.scene, seed: 42 }, rois, 10);
      const out = seg.segment(frame.gray, frame.width, frame.height);
      expect(out.rois.length).toBeGreaterThan(5);
      for (const [i, r] of out.rois.entries()) {
        expect(r.areaPx).toBeGreaterThanOrEqual(DEFAULT_SEGMENT_SETTINGS.minAreaPx);
        expect(r.areaPx).toBeLessThanOrEqual(r.width * r.height);
        expect(r.majorPx).toBeGreaterThanOrEqual(r.minorPx);
        // The equivalent ellipse is about the organism's size: its major axis within its box's diagonal.
        expect(r.majorPx).toBeLessThanOrEqual(Math.hypot(r.width, r.height) * 1.5);
        expect(r.meanGrey).toBeLessThan(255 - DEFAULT_SEGMENT_SETTINGS.threshold / 2); // darker than the background
        expect(r.cropX).toBeLessThanOrEqual(r.x);
        expect(r.cropX + r.cropWidth).toBeGreaterThanOrEqual(r.x + r.width);
        expect(out.crops[i]!.length).toBe(r.cropWidth * r.cropHeight);
        // Flat-fielded crop: the margin is background, near white whatever the illumination.
        expect(out.crops[i]![0]!).toBeGreaterThan(230);
      }
    } finally {
      seg.dispose();
    }
  });

  it('gives the same ROIs in its worker thread as in this one', async () => {
    const settings = { ...DEFAULT_SEGMENT_SETTINGS, background: 'local' as const };
    const frame = compose({ ...CASES[0]!.scene, seed: 7 }, rois, PER_FRAME);
    const here = new FrameSegmenter(cv, settings).segment(frame.gray, frame.width, frame.height);
    const thread = new SegmentThread(settings, silentLogger());
    try {
      await thread.start();
      const there = await thread.segment(frame.gray.slice(), frame.width, frame.height);
      expect(there.rois).toEqual(here.rois);
      expect(there.crops.map((c) => c.length)).toEqual(here.crops.map((c) => c.length));
    } finally {
      await thread.stop();
    }
  });

  it('drops organisms cut by the frame edge, and keeps them when told', () => {
    const frame = compose({ ...CASES[0]!.scene, width: 400, height: 300, seed: 3 }, rois, 4);
    // Paint a dark bar touching the left edge.
    for (let y = 100; y < 140; y++) for (let x = 0; x < 30; x++) frame.gray[y * 400 + x] = 60;
    const dropping = new FrameSegmenter(cv, { ...DEFAULT_SEGMENT_SETTINGS, background: 'local' }).segment(frame.gray, 400, 300);
    const keeping = new FrameSegmenter(cv, { ...DEFAULT_SEGMENT_SETTINGS, background: 'local', dropBorder: false }).segment(frame.gray, 400, 300);
    expect(dropping.rejected.border).toBeGreaterThanOrEqual(1);
    expect(dropping.rois.some((r) => r.x <= 3)).toBe(false);
    expect(keeping.rois.some((r) => r.x <= 3 && r.y <= 102 && r.y + r.height >= 138)).toBe(true);
  });
});

describe.skipIf(!existsSync(path.join(FULL, 'train')))('segmentation of composed frames (full NDSB set, 400 ROIs of every class)', () => {
  let rois: Roi[];
  beforeAll(async () => {
    rois = await loadRois(roiFiles(path.join(FULL, 'train'), 400));
  });

  it('finds >= 95% of the organisms of every class, >= 95% of ROIs are organisms, boxes fit', () => {
    for (const c of [...CASES, NOISY]) {
      const s = run(c, rois);
      report('full set', c.name, s);
      expect(s.recall, c.name).toBeGreaterThanOrEqual(0.95);
      expect(s.precision, c.name).toBeGreaterThanOrEqual(0.95);
      expect(s.meanIou, c.name).toBeGreaterThanOrEqual(0.8);
    }
  });
});


describe('a bright-field frame with unlit corners (a round window)', () => {
  it('finds the organisms inside the lit disc and nothing in the dark corners', async () => {
    const rois = await loadRois(roiFiles(FIXTURES, 1000));
    const frame = compose({ ...CASES[0]!.scene, vignette: 0, gradient: 0, seed: 11 }, rois, 12);
    const { width, height } = frame;
    const plain = frame.gray.slice();
    const r = width / 2;
    const R = r - 60;
    // Black outside a lit disc (a dark ring all round it), with a little noise as a real sensor has.
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if ((x - r) ** 2 + (y - r) ** 2 > R * R) frame.gray[y * width + x] = (x * 7 + y * 13) % 5;
    // Away from the rim by more than the background's reach (the rim itself blurs into it).
    const deep = (b: { x: number; y: number; width: number; height: number }) => (b.x + b.width / 2 - r) ** 2 + (b.y + b.height / 2 - r) ** 2 < (R - 100) ** 2;
    const inside = frame.truth.filter(deep);
    expect(inside.filter((t) => Math.max(t.width, t.height) >= 20).length).toBeGreaterThanOrEqual(4);
    for (const background of ['local', 'running'] as const) {
      const settings = { ...DEFAULT_SEGMENT_SETTINGS, background };
      const lit = score(inside, new FrameSegmenter(cv, settings).segment(plain, width, height).rois.filter(deep));
      const out = new FrameSegmenter(cv, settings).segment(frame.gray, width, height);
      const s = score(inside, out.rois.filter(deep));
      // As many found inside the disc as in the same frame lit to its corners.
      expect(s.matched, `${background}: ${s.misses.join('; ')}`).toBeGreaterThanOrEqual(lit.matched);
      expect(s.recall).toBeGreaterThanOrEqual(0.8);
      // Nothing found in the dark nor on the rim, even with what touches the frame's edge kept:
      // every box lies inside the disc.
      const all = new FrameSegmenter(cv, { ...settings, dropBorder: false }).segment(frame.gray, width, height);
      const corners = (b: { x: number; y: number; width: number; height: number }) => [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]];
      const across = all.rois.filter((b) => corners(b).some(([x, y]) => (x! - r) ** 2 + (y! - r) ** 2 > R * R));
      expect(across.map((b) => `${b.x},${b.y} ${b.width}x${b.height}`), background).toEqual([]);
    }
  });
});

describe('OpenCV memory over many frames', () => {
  it('frees every image it allocates (a daemon segments for weeks)', async () => {
    const rois = await loadRois(roiFiles(FIXTURES, 1000));
    const frames = [0, 1, 2].map((i) => compose({ ...CASES[0]!.scene, width: 512, height: 512, seed: 70 + i }, rois, 6));
    // The next block malloc hands out: it moves up when something allocated was never freed.
    const heap = cv as unknown as { _malloc(n: number): number; _free(p: number): void };
    const probe = () => {
      const p = heap._malloc(64);
      heap._free(p);
      return p;
    };
    for (const background of ['running', 'columns', 'local'] as const) {
      const seg = new FrameSegmenter(cv, { ...DEFAULT_SEGMENT_SETTINGS, background });
      for (let k = 0; k < 4; k++) seg.segment(frames[k % 3]!.gray, 512, 512);
      const before = probe();
      for (let k = 0; k < 30; k++) seg.segment(frames[k % 3]!.gray, 512, 512);
      expect(probe(), background).toBe(before);
      seg.dispose();
    }
  });
});
