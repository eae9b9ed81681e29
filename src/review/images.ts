// Finding a frame's image on disk: the watch folder while it waits, the archive folder once
// processed (same relative path), under any path the same bytes were seen under.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

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

/** `rel` inside `dir`, or undefined when it would escape it. */
function inside(dir: string, rel: string): string | undefined {
  const root = path.resolve(dir);
  const full = path.resolve(root, rel);
  return full.startsWith(root + path.sep) ? full : undefined;
}

/**
 * The first of `relPaths` that exists as a file under the watch or the archive folder, read whole.
 * `format` is the decoded format the store recorded (it wins over the file name's extension).
 * TIFF is converted to PNG (browsers do not show TIFF). Undefined when none is on disk.
 */
export async function findImage(dirs: ImageDirs, relPaths: readonly string[], format?: string | null): Promise<FoundImage | undefined> {
  for (const rel of relPaths) {
    for (const dir of [dirs.watchDir, dirs.archiveDir]) {
      const file = inside(dir, rel);
      if (!file) continue;
      try {
        if (!(await stat(file)).isFile()) continue;
        const bytes = await readFile(file);
        const type = (format ? FORMATS[format.toLowerCase()] : undefined) ?? TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
        if (type === 'image/tiff') return { bytes: await sharp(bytes).png().toBuffer(), contentType: 'image/png', file };
        return { bytes, contentType: type, file };
      } catch {
        // Moved or deleted between stat and read, or unreadable: try the next place.
      }
    }
  }
  return undefined;
}
