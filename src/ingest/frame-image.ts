// Finding a frame's image on disk after the daemon has processed it: in the archive folder
// (ingest.onProcessed "archive": its relative path, or its content name when a camera reused the
// name), in the watch folder ("leave"), or in folders the user names. Found by content: only a
// regular file (never through a link) whose SHA-256 is the frame's is returned.
import { silentLogger, type Logger } from '../log.js';
import { ImageArchive } from './image-archive.js';

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

/**
 * Reads the image of a frame; null when no file with exactly those bytes is found. A file that is
 * there under the frame's name but holds other bytes, or is a link or a FIFO, is never returned
 * (logged on `logger` with its code, PW_E_IMAGE_MISMATCH, PW_E_IMAGE_LINK or PW_E_IMAGE_SPECIAL).
 */
export async function readFrameImage(relPath: string, sha256: string, dirs: readonly string[], logger: Logger = silentLogger()): Promise<{ path: string; bytes: Buffer } | null> {
  // Every folder is searched as an archive (content names, and `-<n>` names of older archives):
  // a folder given with --images is usually a copy of one.
  const archive = new ImageArchive({ roots: dirs.map((dir) => ({ dir, archive: true })), logger });
  try {
    return (await archive.read(sha256, [relPath])) ?? null;
  } catch {
    return null; // refused (and logged) by the archive
  }
}
