// Finding a frame's image by its content: given a SHA-256 and the paths the frame was seen under
// (table frame_sources), the file that holds exactly those bytes, in the watch folder or the
// archive. The review page, the fine-tuner and the exporter all read images here, so none of them
// can show, train on or export the bytes of another frame that happened to get the same file name.
//
// Where an archived image lies (written by the disposer, see `archivedName`):
//   archiveDir/<relPath>                      the usual case: the name was free, or held the same bytes;
//   archiveDir/<dir>/<stem>.<sha256><ext>     when a camera reused the name for other bytes;
//   archiveDir/<dir>/<stem>-<n><ext>          archives written before content names (found and checked).
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { isPlankwatchError, PlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';
import { readVerified } from './hash.js';
import { isInside } from './paths.js';

/** Archives written before content names gave a reused name a `-1`, `-2`… suffix: look that far. */
const LEGACY_SUFFIXES = 1000;

/**
 * The archive name of an image whose relative path was taken by other bytes: the same folder and
 * name with the SHA-256 before the extension (`cast-3/img0001.<sha256>.jpg`), so that the name
 * says which frame it is and two images under one reused name never collide.
 */
export function archivedName(relPath: string, sha256: string): string {
  const ext = path.posix.extname(relPath);
  return `${relPath.slice(0, relPath.length - ext.length)}.${sha256}${ext}`;
}

/** A folder images are looked for in. */
export interface ImageRoot {
  dir: string;
  /**
   * True for an archive (ingest.archiveDir, or a copy of one): content names and the `-<n>` names
   * of older archives are looked for too. False for the watch folder, where only the file's own
   * path can hold it (other names there are other frames).
   */
  archive: boolean;
}

export interface ImageArchiveOptions {
  /** Folders to look in, in order (e.g. the watch folder, then the archive). */
  roots: readonly ImageRoot[];
  logger: Logger;
}

export interface VerifiedImage {
  /** Where the bytes were read. */
  path: string;
  /** The whole file; its SHA-256 is the frame's. */
  bytes: Buffer;
}

/** The watch and archive folders of the ingest settings, the watch folder first (a file waits there before it is archived). */
export function ingestRoots(images: { watchDir: string; archiveDir: string }): ImageRoot[] {
  return [
    { dir: images.watchDir, archive: false },
    { dir: images.archiveDir, archive: true },
  ];
}

/** `relPath`'s parts when it is a plain relative path (no `..`, no absolute, no empty part). */
function safeParts(relPath: string): string[] | undefined {
  const parts = relPath.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) return undefined;
  return parts;
}

function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Reads images by content. A candidate file is read only if it is a regular file reached without
 * any symbolic link below the root (O_NOFOLLOW on the file, realpath on its folder), and returned
 * only if its SHA-256 is the frame's. Anything else is logged with its code and skipped.
 */
export class ImageArchive {
  private readonly roots: readonly ImageRoot[];
  private readonly log: Logger;

  constructor(options: ImageArchiveOptions) {
    this.roots = options.roots;
    this.log = options.logger;
  }

  /**
   * The bytes of frame `sha256`, from the first candidate under any root that holds exactly them.
   * Resolves undefined when no candidate file exists at all. When files exist but none holds the
   * frame's bytes, logs them and rejects with the PlankwatchError of the first one refused
   * (PW_E_IMAGE_MISMATCH: other bytes; PW_E_IMAGE_LINK: a link; PW_E_IMAGE_SPECIAL: a FIFO, socket
   * or device; PW_E_IMAGE_UNREADABLE: a read error). Other frames' files met on the way (a reused
   * name in the archive) are not errors as long as the frame's own file is found.
   */
  async read(sha256: string, relPaths: readonly string[]): Promise<VerifiedImage | undefined> {
    const refused: { file: string; err: PlankwatchError }[] = [];
    for (const root of this.roots) {
      let realRoot: string;
      try {
        realRoot = await realpath(root.dir);
      } catch {
        continue; // no such folder (yet)
      }
      for (const rel of relPaths) {
        const parts = safeParts(rel);
        if (!parts) continue;
        for await (const candidate of this.candidates(root, parts, sha256)) {
          try {
            await this.checkFolder(candidate, realRoot);
            return { path: candidate, bytes: await readVerified(candidate, sha256) };
          } catch (err) {
            if (isAbsent(err)) continue;
            const coded = isPlankwatchError(err) ? err : new PlankwatchError('PW_E_IMAGE_UNREADABLE', `${candidate}: ${(err as Error).message}`, { cause: err });
            refused.push({ file: candidate, err: coded });
          }
        }
      }
    }
    const first = refused[0];
    if (!first) return undefined;
    this.log.warn(
      { code: first.err.code, sha256, files: refused.map((r) => r.file), detail: first.err.detail },
      `the image of frame ${sha256} is not on disk as it was stored: ${first.err.detail} It is not used.`,
    );
    throw first.err;
  }

  /** The files that may hold frame `sha256` seen as `parts` under `root`: its name; in an archive also its content name, then legacy suffixes. */
  private async *candidates(root: ImageRoot, parts: string[], sha256: string): AsyncGenerator<string> {
    const plain = path.join(root.dir, ...parts);
    if (!isInside(plain, root.dir)) return;
    yield plain;
    if (!root.archive) return;
    yield path.join(root.dir, ...archivedName(parts.join('/'), sha256).split('/'));
    const ext = path.extname(plain);
    const stem = plain.slice(0, plain.length - ext.length);
    for (let n = 1; n <= LEGACY_SUFFIXES; n++) {
      const legacy = `${stem}-${n}${ext}`;
      if (!(await exists(legacy))) return; // the old archive filled suffixes in order
      yield legacy;
    }
  }

  /** Refuses a candidate whose folder is reached through a symbolic link leading out of the root. */
  private async checkFolder(candidate: string, realRoot: string): Promise<void> {
    const dir = await realpath(path.dirname(candidate));
    if (!isInside(dir, realRoot)) {
      throw new PlankwatchError('PW_E_IMAGE_LINK', `${candidate} lies in a folder reached through a symbolic link (it resolves to ${dir}, outside ${realRoot}).`);
    }
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}
