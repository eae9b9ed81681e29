// Decides when a file is complete: its size and mtime must stop changing for a while, or, checked
// on the watch event that brought its last bytes, it ends like a complete JPEG or PNG.
import { lstat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { endsComplete } from './complete.js';

/** Coarse mtime clocks (FAT: 2 s, some network file systems) can make a file look older than it is. */
const MTIME_SLACK_MS = 2000;

export interface StabilityOptions {
  /** Size and mtime unchanged this long (observed by polling) means the writer is done. */
  stableMs: number;
  /** The same for a 0-byte file, which is more often a writer that has not started yet. */
  emptyStableMs: number;
  /** How often tracked files are stat'ed. */
  pollMs: number;
  /** Clock; tests may replace it. Default Date.now. */
  now?: () => number;
}

export interface StabilityHandlers {
  /** The file at `path` has been quiet long enough (or is no longer a regular file); `stats` is the last lstat. */
  onStable(path: string, stats: Stats): void;
  /** The file disappeared (renamed away, deleted) while tracked. */
  onGone(path: string): void;
  /** stat failed for another reason (e.g. EACCES on the folder). */
  onError(path: string, err: NodeJS.ErrnoException): void;
}

interface Tracked {
  size: number;
  mtimeMs: number;
  /** When a change in size or mtime was last observed. */
  changedAt: number;
  /** Consecutive polls that saw no change. */
  quietPolls: number;
}

/**
 * Polls tracked files and reports each once it is stable: size and mtime unchanged for `stableMs`
 * of observation, or unchanged across one poll with an mtime already older than `stableMs` (plus
 * slack for coarse clocks), which lets files that were complete before the daemon started go
 * through at once. A slow in-place writer keeps changing size/mtime, so it is never reported before
 * it has been quiet for `stableMs`, unless it ends like a complete JPEG or PNG: then it is
 * reported after one unchanged poll, or at once when `check` is called on a watch event. A reported
 * file is no longer tracked.
 */
export class StabilityTracker {
  private readonly options: StabilityOptions;
  private readonly handlers: StabilityHandlers;
  private readonly tracked = new Map<string, Tracked | null>();
  /** Paths being checked after a watch event; true when another event came meanwhile. */
  private readonly checking = new Map<string, boolean>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(options: StabilityOptions, handlers: StabilityHandlers) {
    this.options = options;
    this.handlers = handlers;
  }

  /** Starts the poll timer. */
  start(): void {
    this.running = true;
    this.schedule();
  }

  /** Stops polling; tracked paths are forgotten. */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.tracked.clear();
    this.checking.clear();
  }

  /**
   * Begins (or restarts) watching `path` until it is stable. `initial`, a stat just taken, counts
   * as the first observation.
   */
  track(path: string, initial?: Stats): void {
    const now = (this.options.now ?? Date.now)();
    this.tracked.set(path, initial ? { size: initial.size, mtimeMs: initial.mtimeMs, changedAt: now, quietPolls: 0 } : null);
  }

  /**
   * A watch event says `path` was just written to (or appeared): if it now ends like a complete
   * JPEG or PNG, report it at once instead of at a later poll. Checks of one path never overlap: an
   * event during a check asks for one more check after it. Errors are left to the next poll.
   */
  check(path: string): void {
    if (!this.running || !this.tracked.has(path)) return;
    if (this.checking.has(path)) {
      this.checking.set(path, true);
      return;
    }
    this.checking.set(path, false);
    void this.checkNow(path).finally(() => {
      const again = this.checking.get(path);
      this.checking.delete(path);
      if (again) this.check(path);
    });
  }

  /** Stops watching `path` without reporting it. */
  forget(path: string): void {
    this.tracked.delete(path);
  }

  /** Number of files being watched. */
  get size(): number {
    return this.tracked.size;
  }

  private async checkNow(path: string): Promise<void> {
    let st: Stats;
    try {
      st = await lstat(path);
    } catch {
      return; // gone or unreadable: the poll reports it
    }
    if (!st.isFile() || st.size === 0) return;
    const complete = await endsComplete(path, st.size).catch(() => false);
    if (!complete || !this.running || !this.tracked.has(path)) return;
    // Bytes written after the lstat show in the ingest's size check after hashing, which sends the
    // file back here.
    this.tracked.delete(path);
    this.handlers.onStable(path, st);
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.poll().then(
        () => this.schedule(),
        () => this.schedule(),
      );
    }, this.options.pollMs);
  }

  private async poll(): Promise<void> {
    const paths = [...this.tracked.keys()];
    // lstat: a file swapped for a link is seen as the link, never as its target.
    const results = await Promise.allSettled(paths.map((p) => lstat(p)));
    const now = (this.options.now ?? Date.now)();
    const quick: { path: string; st: Stats }[] = [];
    paths.forEach((path, i) => {
      if (!this.running || !this.tracked.has(path)) return; // stopped, or forgotten meanwhile
      const r = results[i]!;
      if (r.status === 'rejected') {
        this.tracked.delete(path);
        const err = r.reason as NodeJS.ErrnoException;
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') this.handlers.onGone(path);
        else this.handlers.onError(path, err);
        return;
      }
      const st = r.value;
      if (!st.isFile()) {
        // Replaced by a link, FIFO or folder while settling: the ingest refuses it with its code now.
        this.tracked.delete(path);
        this.handlers.onStable(path, st);
        return;
      }
      const prev = this.tracked.get(path);
      if (!prev || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) {
        this.tracked.set(path, { size: st.size, mtimeMs: st.mtimeMs, changedAt: now, quietPolls: 0 });
        return;
      }
      prev.quietPolls += 1;
      const need = st.size === 0 ? this.options.emptyStableMs : this.options.stableMs;
      const quietFor = now - prev.changedAt;
      const oldMtime = now - st.mtimeMs >= need + MTIME_SLACK_MS;
      if (quietFor >= need || oldMtime) {
        this.tracked.delete(path);
        this.handlers.onStable(path, st);
      } else if (prev.quietPolls === 1 && st.size > 0) {
        quick.push({ path, st });
      }
    });
    // Unchanged across one poll and ending like a complete JPEG/PNG: take it now.
    await Promise.all(
      quick.map(async ({ path, st }) => {
        const complete = await endsComplete(path, st.size).catch(() => false);
        const current = this.tracked.get(path);
        if (!complete || !this.running || !current || current.size !== st.size || current.mtimeMs !== st.mtimeMs) return;
        this.tracked.delete(path);
        this.handlers.onStable(path, st);
      }),
    );
  }
}
