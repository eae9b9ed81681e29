// What happens to a file in the watch folder once its fate is stored: leave, archive, delete, quarantine.
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { PlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';
import { hashFile } from './hash.js';
import { archivedName } from './image-archive.js';

/** What to do with a file whose result is stored. */
export type ProcessedAction = 'leave' | 'archive' | 'delete';

/** How the caller settled a file: classified, same bytes as a stored frame, or rejected. */
export type FinishOutcome = 'processed' | 'duplicate' | 'quarantined';

/** A file as the disposer needs it: where it is, and its path relative to the watch folder. */
export interface FileRef {
  path: string;
  relPath: string;
  /**
   * The SHA-256 its result was stored under, when known (null or absent: unknown, as for a file
   * found stored after a crash; it is hashed then). A file to archive or delete whose bytes no
   * longer have it is left where it is: it is another image now, for the next scan.
   */
  sha256?: string | null;
}

export interface DisposeResult {
  action: 'left' | 'archived' | 'deleted' | 'quarantined' | 'failed';
  /** Where the file now lies (archive or quarantine). */
  dest?: string;
}

export interface DisposerOptions {
  /** For processed and duplicate files. Quarantined files are always moved, never deleted. */
  onProcessed: ProcessedAction;
  archiveDir: string;
  quarantineDir: string;
  logger: Logger;
  /**
   * Asked when a move into the archive or quarantine fails: true when the caller reports the
   * failure itself (a full disk, reported once for every file), so it is not logged per file.
   */
  onMoveFailed?: (err: unknown, folder: 'archive' | 'quarantine') => boolean;
}

/** The fs calls a move uses; replaceable so tests can force a cross-device move. */
export interface MoveFs {
  rename(src: string, dest: string): Promise<void>;
  copyFile(src: string, dest: string, mode: number): Promise<void>;
  unlink(path: string): Promise<void>;
}

const realFs: MoveFs = { rename: fsp.rename, copyFile: fsp.copyFile, unlink: fsp.unlink };

/** `dir/a.jpg`, then `dir/a-1.jpg`, `dir/a-2.jpg`…: the first name not taken. */
export async function freeName(path: string): Promise<string> {
  const ext = extname(path);
  const stem = path.slice(0, path.length - ext.length);
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? path : `${stem}-${n}${ext}`;
    try {
      await fsp.lstat(candidate);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return candidate;
      throw err;
    }
  }
}

/**
 * Moves `src` to `dest` (creating dest's folder), replacing whatever file `dest` names: the caller
 * chooses a free name or one it may replace. Across file systems (EXDEV) it copies to a hidden
 * temporary name beside `dest`, keeps the mtime, renames that onto `dest`, then unlinks the source;
 * if the unlink fails the copy is removed and the error thrown, so a file is never in both places.
 * A symbolic link is moved as a link (never its target); a FIFO, socket or device cannot cross file
 * systems (PW_E_IMAGE_SPECIAL) and is never opened.
 */
export async function moveFile(src: string, dest: string, fs: MoveFs = realFs): Promise<void> {
  await fsp.mkdir(dirname(dest), { recursive: true });
  try {
    await fs.rename(src, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const st = await fsp.lstat(src);
  const tmp = join(dirname(dest), `.${basename(dest)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  if (st.isSymbolicLink()) {
    await fsp.symlink(await fsp.readlink(src), tmp);
  } else if (st.isFile()) {
    await fs.copyFile(src, tmp, fsc.COPYFILE_EXCL);
    await fsp.utimes(tmp, st.atime, st.mtime);
  } else {
    throw new PlankwatchError('PW_E_IMAGE_SPECIAL', `${src} is not a regular file and cannot be moved to another file system; it was left where it is.`);
  }
  try {
    // Same folder: this rename cannot cross file systems.
    await fsp.rename(tmp, dest);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  try {
    await fs.unlink(src);
  } catch (err) {
    await fsp.rm(dest, { force: true });
    throw err;
  }
}

/**
 * Applies the configured action to a settled file. Processed and duplicate files are left,
 * archived or deleted; quarantined files are moved to quarantineDir under the same relative path
 * (a name already taken there gets a `-1`, `-2`… suffix). An archived file keeps its relative path
 * when that name is free in archiveDir or holds the same bytes; when a camera reused the name for
 * other bytes it is archived under its content name (`img0001.<sha256>.jpg`, see `archivedName`),
 * so no image is ever overwritten and each frame's image is found by its SHA-256. Before a file is
 * archived or deleted its bytes are hashed again: one that changed since it was read is left for
 * the next scan (PW_E_IMAGE_MISMATCH, logged). Failures are logged as PW_E_MOVE and reported,
 * never thrown.
 */
export class FileDisposer {
  private readonly options: DisposerOptions;
  private readonly log: Logger;
  private readonly fs: MoveFs;

  constructor(options: DisposerOptions, fs: MoveFs = realFs) {
    this.options = options;
    this.log = options.logger;
    this.fs = fs;
  }

  /** Disposes of `file` according to `outcome`; never throws. */
  async dispose(file: FileRef, outcome: FinishOutcome): Promise<DisposeResult> {
    const action = outcome === 'quarantined' ? 'quarantine' : this.options.onProcessed;
    try {
      switch (action) {
        case 'leave':
          return { action: 'left' };
        case 'delete': {
          if (file.sha256 && !(await this.unchanged(file, file.sha256))) return { action: 'left' };
          await this.fs.unlink(file.path);
          return { action: 'deleted' };
        }
        case 'archive': {
          if (file.sha256 && !(await this.unchanged(file, file.sha256))) return { action: 'left' };
          const dest = await this.archiveDest(file.relPath, file.sha256 || (await hashFile(file.path)).sha256);
          await moveFile(file.path, dest, this.fs);
          return { action: 'archived', dest };
        }
        case 'quarantine': {
          const dest = await freeName(join(this.options.quarantineDir, ...file.relPath.split('/')));
          await moveFile(file.path, dest, this.fs);
          return { action: 'quarantined', dest };
        }
      }
    } catch (err) {
      const folder = action === 'archive' ? 'archive' : action === 'quarantine' ? 'quarantine' : undefined;
      if (folder && this.options.onMoveFailed?.(err, folder)) {
        this.log.debug({ file: file.path, outcome, action }, `${folder} is full: the file stays in the watch folder for now`);
      } else {
        this.log.error({ code: 'PW_E_MOVE', err, file: file.path, outcome, action }, 'could not dispose of a file');
      }
      return { action: 'failed' };
    }
  }

  /** True when `file` still holds the bytes stored as `stored`; else logs why it is left alone. */
  private async unchanged(file: FileRef, stored: string): Promise<boolean> {
    const { sha256 } = await hashFile(file.path);
    if (sha256 === stored) return true;
    this.log.warn(
      { code: 'PW_E_IMAGE_MISMATCH', file: file.relPath, sha256: stored, found: sha256 },
      `${file.relPath} was written again after it was read; it is left in the watch folder for the next scan`,
    );
    return false;
  }

  /** `relPath` in the archive when free or holding the same bytes, else its content name. */
  private async archiveDest(relPath: string, sha256: string): Promise<string> {
    const plain = join(this.options.archiveDir, ...relPath.split('/'));
    try {
      const st = await fsp.lstat(plain);
      if (st.isFile() && (await hashFile(plain)).sha256 === sha256) return plain;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return plain;
      // Anything else there (a link, a folder, unreadable): never written through or over.
    }
    return join(this.options.archiveDir, ...archivedName(relPath, sha256).split('/'));
  }
}
