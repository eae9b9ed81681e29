// The one place that talks to chokidar: reports paths that appear or change in the watch folder.
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';
import type { PathFilter } from './paths.js';

const READY_TIMEOUT_MS = 30_000;

export interface FolderWatcherOptions {
  filter: PathFilter;
  /** Poll instead of inotify (network file systems). */
  usePolling: boolean;
  /** Poll interval when polling (ms). */
  pollIntervalMs: number;
  logger: Logger;
}

/**
 * Watches the filter's watchDir recursively and calls `onPath` for every file added or changed
 * that the filter accepts. Files already there at start are left to the reconciliation scan.
 * Watch errors are logged as PW_E_WATCH; the periodic rescan covers for them.
 */
export class FolderWatcher {
  private readonly options: FolderWatcherOptions;
  private readonly onPath: (path: string) => void;
  private watcher: FSWatcher | undefined;

  constructor(options: FolderWatcherOptions, onPath: (path: string) => void) {
    this.options = options;
    this.onPath = onPath;
  }

  /** Starts watching; resolves once chokidar has read the tree and is delivering events. */
  async start(): Promise<void> {
    const { filter, usePolling, pollIntervalMs, logger } = this.options;
    const watcher = watch(filter.watchDir, {
      ignoreInitial: true,
      persistent: true,
      followSymlinks: false,
      usePolling,
      interval: pollIntervalMs,
      binaryInterval: pollIntervalMs,
      ignored: (path: string) => filter.ignores(path),
    });
    this.watcher = watcher;
    watcher.on('add', (path) => this.onPath(path));
    watcher.on('change', (path) => this.onPath(path));
    watcher.on('error', (err) => logger.error({ code: 'PW_E_WATCH', err, dir: filter.watchDir }, 'watch error'));
    // A tree chokidar cannot finish reading must not hold the daemon: the rescan covers it.
    let timer: NodeJS.Timeout | undefined;
    const ready = await Promise.race([
      new Promise<boolean>((resolve) => watcher.once('ready', () => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!ready) logger.warn({ code: 'PW_E_WATCH', dir: filter.watchDir }, 'watcher not ready in time; relying on rescans meanwhile');
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.close();
  }
}
