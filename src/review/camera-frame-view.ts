// An ROI shown in its camera frame (ingest.mode "frames"): the whole frame, scaled down, with the
// ROI's box drawn on it, for the review page. The camera frame is read by its content like every
// image (src/ingest/image-archive.ts): from the archive, or the watch folder while it is there.
import sharp from 'sharp';
import type { RoiPlace } from '../store/index.js';

/** What GET /api/frames/:sha256/camera-frame answers. */
export interface RoiInFrame {
  cameraFrame: { sha256: string; relPath: string; width: number; height: number; capturedAt: number; particles: number };
  /** The organism's box in the camera frame, pixels. */
  box: { x: number; y: number; width: number; height: number };
  roiIndex: number;
  areaPx: number;
  majorPx: number;
  minorPx: number;
  meanGrey: number;
  /** Null while camera.pixelSizeUm is 0 (unknown). */
  areaUm2: number | null;
  majorUm: number | null;
  minorUm: number | null;
}

export function roiInFrame(place: RoiPlace): RoiInFrame {
  const { cameraFrame: f, roi: r } = place;
  return {
    cameraFrame: { sha256: f.sha256, relPath: f.relPath, width: f.width, height: f.height, capturedAt: f.capturedAt, particles: f.particles },
    box: { x: r.x, y: r.y, width: r.width, height: r.height },
    roiIndex: r.index,
    areaPx: r.areaPx,
    majorPx: r.majorPx,
    minorPx: r.minorPx,
    meanGrey: r.meanGrey,
    areaUm2: r.areaUm2,
    majorUm: r.majorUm,
    minorUm: r.minorUm,
  };
}

/** The camera frame at most `maxWidth` pixels wide, as JPEG, with the ROI's box drawn in red. */
export async function drawRoiInFrame(frameBytes: Buffer, place: RoiPlace, maxWidth: number): Promise<Buffer> {
  const { cameraFrame: f, roi: r } = place;
  const scale = Math.min(1, maxWidth / f.width);
  const width = Math.max(1, Math.round(f.width * scale));
  const height = Math.max(1, Math.round(f.height * scale));
  const pad = 3;
  const x = Math.max(0, Math.floor(r.x * scale) - pad);
  const y = Math.max(0, Math.floor(r.y * scale) - pad);
  const w = Math.min(width - x, Math.ceil(r.width * scale) + 2 * pad);
  const h = Math.min(height - y, Math.ceil(r.height * scale) + 2 * pad);
  const box = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect x="${x + 1}" y="${y + 1}" width="${Math.max(1, w - 2)}" height="${Math.max(1, h - 2)}" fill="none" stroke="#ff2020" stroke-width="2"/></svg>`,
  );
  return sharp(frameBytes, { limitInputPixels: false })
    .resize(width, height)
    .toColourspace('srgb')
    .composite([{ input: box, top: 0, left: 0 }])
    .jpeg({ quality: 85 })
    .toBuffer();
}
