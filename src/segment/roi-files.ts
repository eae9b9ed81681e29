// ROI images cut from a camera frame, written as 8-bit gray PNG files under the archive folder,
// where the review page, the fine-tuner, the exports and the sync thumbnails find every frame's
// image by its SHA-256 (src/ingest/image-archive.ts). A camera frame "cast-7/f0001.tif" with SHA-256 3fa2c1d0…
// gives "cast-7/f0001-3fa2c1d0/0001.png", "…/0002.png": one folder per camera frame content, so a
// camera that reuses a name never overwrites the ROIs of the earlier frame.
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readVerified } from '../ingest/index.js';
import { encodeGrayPng } from './png.js';

export interface RoiFile {
  path: string;
  relPath: string;
  sha256: string;
  bytes: number;
}

/** Relative path of ROI `index` (1, 2…) of the camera frame at `cameraRelPath` with `cameraSha256`. */
export function roiRelPath(cameraRelPath: string, cameraSha256: string, index: number): string {
  const dir = path.posix.dirname(cameraRelPath);
  const stem = path.posix.basename(cameraRelPath, path.posix.extname(cameraRelPath));
  const folder = `${stem}-${cameraSha256.slice(0, 8)}`;
  return path.posix.join(dir === '.' ? '' : dir, folder, `${String(index).padStart(4, '0')}.png`);
}

export interface RoiCrop {
  relPath: string;
  /** 8-bit gray pixels, row-major. */
  gray: Uint8Array;
  width: number;
  height: number;
}

/**
 * Encodes each crop as PNG and writes it at `root`/crop.relPath (written whole, then renamed in);
 * the folders are made once for all.
 */
export async function writeRoiImages(root: string, crops: RoiCrop[]): Promise<RoiFile[]> {
  for (const dir of new Set(crops.map((c) => path.dirname(roiPath(root, c.relPath))))) await mkdir(dir, { recursive: true });
  return Promise.all(
    crops.map(async (c) => {
      const png = encodeGrayPng(c.gray, c.width, c.height);
      const sha256 = createHash('sha256').update(png).digest('hex');
      const file = roiPath(root, c.relPath);
      const temp = `${file}.${process.pid}.part`;
      await writeFile(temp, png);
      await rename(temp, file);
      return { path: file, relPath: c.relPath, sha256, bytes: png.length };
    }),
  );
}

/** The size of `root`/`relPath` when it is a regular file holding exactly the bytes `sha256`, else undefined. */
export async function roiImageIntact(root: string, relPath: string, sha256: string): Promise<number | undefined> {
  try {
    return (await readVerified(roiPath(root, relPath), sha256)).length;
  } catch {
    return undefined;
  }
}

export function roiPath(root: string, relPath: string): string {
  return path.join(root, ...relPath.split('/'));
}
