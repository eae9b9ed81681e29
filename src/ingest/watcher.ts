// Reports paths that appear or change in the watch folder: one inotify watch (fs.watch) per
// folder, each event naming the one path it concerns. A folder that appears gets its own watch
// and its files are reported. Nothing here lists a folder on every event: with thousands of
// images waiting, a watcher that re-reads the folder per event spends a core on lstat alone.
// The ingest's reconciliation scan covers whatever an event missed, and gives any folder whose
// watch was lost a new one (`ensure`).
import { watch, type FSWatcher } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from '../log.js';
import type { PathFilter } from './paths.js';
import { walkFiles } from './scanner.js';

export interface FolderWatcherOptions {
  filter: PathFilter;
  logger: Logger;
}

/** True for errors that mean "the path is gone", not "something is wrong". */
function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Watches the filter's watchDir recursively and calls `onPath` for every file added or changed
 * that the filter accepts (and for some that are already gone: the caller's stat settles those).
 * Files already there at start are left to the reconciliation scan; files in a folder that
 * appears later (once its parent is watched) are reported here. Watch errors are logged as PW_E_WATCH.
 */
export class FolderWatcher {
  private readonly options: FolderWatcherOptions;
  private readonly onPath: (path: string) => void;
  private readonly watches = new Map<string, FSWatcher>();
  private running = false;

  constructor(options: FolderWatcherOptions, onPath: (path: string) => void) {
    this.options = options;
    this.onPath = onPath;
  }

  /** Folders watched right now. */
  get watchedFolders(): number {
    return this.watches.size;
  }

  /**
   * Starts watching the watch folder. Its subfolders get their watches from the ingest's scan at
   * start (`ensure`, as the walk passes each), so the tree is walked once, not twice.
   */
  start(): void {
    this.running = true;
    this.ensure(this.options.filter.watchDir);
  }

  /**
   * Gives `dir` a watch if it has none (a watch lost to an error, or a folder whose event was
   * missed). The ingest's reconciliation scan calls this for every folder it walks, and then
   * notices the folder's files itself.
   */
  ensure(dir: string): void {
    if (!this.watches.has(dir)) this.watchFolder(dir);
  }

  /** Stops watching. */
  stop(): void {
    this.running = false;
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
  }

  /** Watches `root` and every folder below it that has no watch yet, reporting the files of each. */
  private async watchTree(root: string): Promise<void> {
    const { filter, logger } = this.options;
    let added = false; // the folder whose files are being listed got its watch just now
    const onFolder = (dir: string) => {
      added = !this.watches.has(dir) && this.watchFolder(dir);
    };
    const onError = (dir: string, err: NodeJS.ErrnoException) => {
      this.unwatch(dir);
      if (!isGone(err)) logger.warn({ code: 'PW_E_WATCH', err, dir }, `could not read folder ${dir}; the rescan will retry it`);
    };
    for await (const path of walkFiles(root, filter, onError, onFolder)) {
      if (!this.running) return;
      if (added) this.onPath(path);
    }
  }

  /** One fs.watch on one folder. False when it could not be set up (logged). */
  private watchFolder(dir: string): boolean {
    const { logger } = this.options;
    if (!this.running) return false;
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: true }, (event, name) => this.onEvent(dir, event, name));
    } catch (err) {
      if (isGone(err)) return false;
      const hint = (err as NodeJS.ErrnoException).code === 'ENOSPC' ? ' (the inotify watch limit is reached: raise fs.inotify.max_user_watches)' : '';
      logger.error({ code: 'PW_E_WATCH', err, dir }, `could not watch ${dir}${hint}; relying on rescans for it`);
      return false;
    }
    w.on('error', (err: NodeJS.ErrnoException) => {
      this.unwatch(dir);
      if (!isGone(err)) logger.error({ code: 'PW_E_WATCH', err, dir }, `watch on ${dir} failed; the rescan will restore it`);
    });
    this.watches.set(dir, w);
    return true;
  }

  /** Closes the watch on `dir` and on every folder below it. */
  private unwatch(dir: string): void {
    const prefix = join(dir, '/');
    for (const [path, w] of this.watches) {
      if (path === dir || path.startsWith(prefix)) {
        w.close();
        this.watches.delete(path);
      }
    }
  }

  private onEvent(dir: string, event: string, name: string | Buffer | null): void {
    if (!this.running) return;
    if (name === null) {
      // The kernel did not say which entry (a queue overflow): look at the whole folder.
      void this.rescanFolder(dir);
      return;
    }
    const path = join(dir, name.toString());
    if (this.options.filter.ignores(path)) return;
    // Content written to a file: the file is known to be a file (or already gone).
    if (event === 'change' && !this.watches.has(path)) {
      this.onPath(path);
      return;
    }
    // Created, moved in, moved out or removed: a file, or a folder to start or stop watching.
    void this.classify(path);
    // A watched folder that is itself removed reports its own name: drop its watch so that the
    // next rescan sets a new one if the folder comes back.
    if (name.toString() === basename(dir)) void this.dropIfGone(dir);
  }

  private async dropIfGone(dir: string): Promise<void> {
    try {
      await lstat(dir);
    } catch (err) {
      if (isGone(err)) this.unwatch(dir);
    }
  }

  private async classify(path: string): Promise<void> {
    try {
      const st = await lstat(path);
      if (st.isDirectory()) {
        if (!this.watches.has(path)) await this.watchTree(path);
      } else {
        this.onPath(path);
      }
    } catch (err) {
      if (!isGone(err)) this.onPath(path); // the ingest's stat reports why
      else if (this.watches.has(path)) this.unwatch(path); // a watched folder removed or moved away
    }
  }

  private async rescanFolder(dir: string): Promise<void> {
    this.unwatch(dir);
    await this.watchTree(dir);
  }
}
