// Reports paths that appear or change in the watch folder: one inotify watch (fs.watch) per
// folder, each event naming the one path it concerns. A folder that appears gets its own watch
// and its files are reported. Nothing here lists a folder on every event: with thousands of
// images waiting, a watcher that re-reads the folder per event spends a core on lstat alone.
// Polling mode (network file systems, where inotify sees no remote writes) walks the tree on a
// timer instead. Either way, the ingest's reconciliation scan covers whatever an event missed.
import { watch, type FSWatcher } from 'node:fs';
import { lstat, opendir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from '../log.js';
import type { PathFilter } from './paths.js';
import { walkFiles } from './scanner.js';

export interface FolderWatcherOptions {
  filter: PathFilter;
  /** Walk the tree every pollIntervalMs instead of using inotify (network file systems). */
  usePolling: boolean;
  pollIntervalMs: number;
  logger: Logger;
}

/** Errors that mean "the folder is gone", not "something is wrong". */
const GONE = new Set(['ENOENT', 'ENOTDIR']);

/**
 * Watches the filter's watchDir recursively and calls `onPath` for every file added or changed
 * that the filter accepts (and for some that are already gone: the caller's stat settles those).
 * Files already there at start are left to the reconciliation scan; files in a folder that
 * appears later are reported here. Watch errors are logged as PW_E_WATCH.
 */
export class FolderWatcher {
  private readonly options: FolderWatcherOptions;
  private readonly onPath: (path: string) => void;
  private readonly watches = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private running = false;

  constructor(options: FolderWatcherOptions, onPath: (path: string) => void) {
    this.options = options;
    this.onPath = onPath;
  }

  /** Folders watched right now. */
  get watchedFolders(): number {
    return this.watches.size;
  }

  /** Starts watching; resolves once every folder of the tree has its watch. */
  async start(): Promise<void> {
    this.running = true;
    if (this.options.usePolling) {
      this.schedulePoll();
      return;
    }
    await this.watchTree(this.options.filter.watchDir, false);
  }

  /**
   * Adds a watch to any folder of the tree that lacks one (a watch lost to an error, or a folder
   * whose event was missed), reporting the files of each folder it adds. The ingest calls this
   * with every reconciliation scan.
   */
  async refresh(): Promise<void> {
    if (!this.running || this.options.usePolling) return;
    await this.watchTree(this.options.filter.watchDir, true);
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    await this.polling;
  }

  /** Watches `root` and every folder below it that has no watch yet; reports the files of new ones if asked. */
  private async watchTree(root: string, reportFiles: boolean): Promise<void> {
    const { filter, logger } = this.options;
    const stack = [root];
    while (stack.length > 0 && this.running) {
      const dir = stack.pop()!;
      const added = !this.watches.has(dir) && this.watchFolder(dir);
      let handle;
      try {
        handle = await opendir(dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!GONE.has(code)) logger.warn({ code: 'PW_E_WATCH', err, dir }, `could not read folder ${dir}; the rescan will retry it`);
        this.unwatch(dir);
        continue;
      }
      for await (const entry of handle) {
        const path = join(dir, entry.name);
        if (filter.ignores(path)) continue;
        if (entry.isDirectory()) stack.push(path);
        else if (added && reportFiles) this.onPath(path);
      }
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
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (GONE.has(code)) return false;
      const hint = code === 'ENOSPC' ? ' (the inotify watch limit is reached: raise fs.inotify.max_user_watches)' : '';
      logger.error({ code: 'PW_E_WATCH', err, dir }, `could not watch ${dir}${hint}; relying on rescans for it`);
      return false;
    }
    w.on('error', (err: NodeJS.ErrnoException) => {
      this.unwatch(dir);
      if (!GONE.has(err.code ?? '')) logger.error({ code: 'PW_E_WATCH', err, dir }, `watch on ${dir} failed; the rescan will restore it`);
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
      if (GONE.has((err as NodeJS.ErrnoException).code ?? '')) this.unwatch(dir);
    }
  }

  private async classify(path: string): Promise<void> {
    try {
      const st = await lstat(path);
      if (st.isDirectory()) {
        if (!this.watches.has(path)) await this.watchTree(path, true);
      } else {
        this.onPath(path);
      }
    } catch (err) {
      if (!GONE.has((err as NodeJS.ErrnoException).code ?? '')) this.onPath(path); // the ingest's stat reports why
      else if (this.watches.has(path)) this.unwatch(path); // a watched folder removed or moved away
    }
  }

  private async rescanFolder(dir: string): Promise<void> {
    this.unwatch(dir);
    await this.watchTree(dir, true);
  }

  private schedulePoll(): void {
    if (!this.running) return;
    this.pollTimer = setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        this.schedulePoll();
      });
    }, this.options.pollIntervalMs);
  }

  private async poll(): Promise<void> {
    const { filter, logger } = this.options;
    const onError = (dir: string, err: NodeJS.ErrnoException) => {
      if (!GONE.has(err.code ?? '')) logger.warn({ code: 'PW_E_WATCH', err, dir }, `could not read folder ${dir} while polling`);
    };
    for await (const path of walkFiles(filter.watchDir, filter, onError)) {
      if (!this.running) return;
      this.onPath(path);
    }
  }
}
