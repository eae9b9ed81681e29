// What happens to a file in the watch folder once its fate is stored: leave, archive, delete, quarantine.
import { constants as fsc } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import type { Logger } from '../log.js';

/** What to do with a file whose result is stored. */
export type ProcessedAction = 'leave' | 'archive' | 'delete';

/** How the caller settled a file: classified, same bytes as a stored frame, or rejected. */
export type FinishOutcome = 'processed' | 'duplicate' | 'quarantined';

/** A file as the disposer needs it: where it is, and its path relative to the watch folder. */
export interface FileRef {
  path: string;
  relPath: string;
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
 * Moves `src` to `dest` (creating dest's folder). Across file systems (EXDEV) it copies, keeps
 * the mtime, then unlinks the source; if the unlink fails the copy is removed and the error thrown,
 * so a file is never in both places.
 */
export async function moveFile(src: string, dest: string, fs: MoveFs = realFs): Promise<void> {
  await fsp.mkdir(dirname(dest), { recursive: true });
  try {
    await fs.rename(src, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const st = await fsp.stat(src);
  await fs.copyFile(src, dest, fsc.COPYFILE_EXCL);
  await fsp.utimes(dest, st.atime, st.mtime);
  try {
    await fs.unlink(src);
  } catch (err) {
    await fsp.rm(dest, { force: true });
    throw err;
  }
}

/**
 * Applies the configured action to a settled file. Processed and duplicate files are left,
 * archived (moved to archiveDir under the same relative path) or deleted; quarantined files are
 * moved to quarantineDir under the same relative path. A name already taken at the destination
 * gets a `-1`, `-2`… suffix. Failures are logged as PW_E_MOVE and reported, never thrown.
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
        case 'delete':
          await this.fs.unlink(file.path);
          return { action: 'deleted' };
        case 'archive': {
          const dest = await freeName(join(this.options.archiveDir, ...file.relPath.split('/')));
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
      this.log.error({ code: 'PW_E_MOVE', err, file: file.path, outcome, action }, 'could not dispose of a file');
      return { action: 'failed' };
    }
  }
}
