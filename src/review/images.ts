// A frame's image for the review page: its own bytes, found by SHA-256 in the watch folder or the
// archive (src/ingest/image-archive.ts), never a file that merely has its name.
import path from 'node:path';
import sharp from 'sharp';
import type { ImageArchive } from '../ingest/image-archive.js';

export interface ImageDirs {
  watchDir: string;
  archiveDir: string;
}

export interface FoundImage {
  bytes: Buffer;
  contentType: string;
  /** Where it was found. */
  file: string;
}

const FORMATS: Record<string, string> = { jpeg: 'image/jpeg', jpg: 'image/jpeg', png: 'image/png', tiff: 'image/tiff', tif: 'image/tiff' };
const TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.tif': 'image/tiff', '.tiff': 'image/tiff' };

/**
 * The image of frame `sha256` (seen under `relPaths`), read whole and checked against its SHA-256.
 * `format` is the decoded format the store recorded (it wins over the file name's extension).
 * TIFF is converted to PNG (browsers do not show TIFF). Undefined when no file is on disk; rejects
 * with PW_E_IMAGE_MISMATCH, PW_E_IMAGE_LINK or PW_E_IMAGE_SPECIAL when the files there are not the
 * frame's bytes (see `ImageArchive.read`).
 */
export async function findImage(archive: ImageArchive, sha256: string, relPaths: readonly string[], format?: string | null): Promise<FoundImage | undefined> {
  const found = await archive.read(sha256, relPaths);
  if (!found) return undefined;
  const type = (format ? FORMATS[format.toLowerCase()] : undefined) ?? TYPES[path.extname(found.path).toLowerCase()] ?? 'application/octet-stream';
  if (type === 'image/tiff') return { bytes: await sharp(found.bytes).png().toBuffer(), contentType: 'image/png', file: found.path };
  return { bytes: found.bytes, contentType: type, file: found.path };
}
