// Finding a frame's image on disk after the daemon has processed it: in the archive folder
// (ingest.onProcessed "archive", same relative path, or a "-N" name if that one was taken), in the
// watch folder ("leave"), or in folders the user names. The SHA-256 confirms a match.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';

export interface ImageDirs {
  /** Searched in order. */
  dirs: string[];
}

/** The image folders implied by the ingest settings, plus extra ones first. */
export function imageDirsFromConfig(ingest: { onProcessed: string; archiveDir: string; watchDir: string }, extra: string[] = []): string[] {
  const dirs = [...extra];
  if (ingest.onProcessed === 'archive') dirs.push(ingest.archiveDir);
  if (ingest.onProcessed === 'leave') dirs.push(ingest.watchDir);
  // A file may still be in the watch folder (not yet archived) or have been archived earlier.
  for (const d of [ingest.archiveDir, ingest.watchDir]) if (!dirs.includes(d)) dirs.push(d);
  return dirs;
}

/** Reads the image of a frame; null when no file with those bytes is found. */
export async function readFrameImage(relPath: string, sha256: string, dirs: readonly string[]): Promise<{ path: string; bytes: Buffer } | null> {
  const parts = relPath.split('/').filter((p) => p !== '' && p !== '..');
  if (parts.length === 0) return null;
  const ext = extname(relPath);
  for (const dir of dirs) {
    const base = join(dir, ...parts);
    const stem = base.slice(0, base.length - ext.length);
    for (let n = 0; n < 5; n++) {
      const candidate = n === 0 ? base : `${stem}-${n}${ext}`;
      let bytes: Buffer;
      try {
        bytes = await readFile(candidate);
      } catch {
        if (n === 0) continue;
        break;
      }
      if (createHash('sha256').update(bytes).digest('hex') === sha256) return { path: candidate, bytes };
    }
  }
  return null;
}
