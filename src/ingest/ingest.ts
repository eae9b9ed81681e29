// The ingest stage: finds complete images in the watch folder, hashes them and hands them on,
// at most maxPending at a time, each path once; then disposes of them when told their fate.
import { lstat, mkdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { isPlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';
import type { IncomingFile, Part, RejectCode } from '../types.js';
import { FileDisposer, type DisposeResult, type FileRef, type FinishOutcome, type ProcessedAction } from './disposer.js';
import { hashFile, notRegular } from './hash.js';
import { Limiter } from './limit.js';
import { PathFilter } from './paths.js';
import { walkFiles } from './scanner.js';
import { StabilityTracker } from './stability.js';
import { FolderWatcher } from './watcher.js';

export type { DisposeResult, FileRef, FinishOutcome, ProcessedAction } from './disposer.js';

export interface IngestOptions {
  /** Folder the camera writes into; subfolders included. Created if missing. */
  watchDir: string;
  /** Processed files go here when onProcessed is "archive". Never watched. Created if missing. */
  archiveDir: string;
  /** Rejected files go here. Never watched. Created if missing. */
  quarantineDir: string;
  onProcessed: ProcessedAction;
  /** Size and mtime must stay unchanged this long before a file is read (ms). */
  stableMs: number;
  /** The same for a 0-byte file (ms). Default 3 × stableMs. */
  emptyStableMs?: number;
  /** How often files being written are stat'ed (ms). Default stableMs/4, within 20..100. */
  pollMs?: number;
  /** Reconciliation scan period (ms); 0 = only the scan at start. */
  rescanIntervalMs: number;
  /** Most files held between noticing and `finish`/`release`. */
  maxPending: number;
  /** Most paths remembered while waiting for capacity; beyond that the next scan finds them. Default max(1000, 8 × maxPending). */
  maxDeferred?: number;
  /** Poll the folder instead of using inotify (network file systems). Default false. */
  usePolling?: boolean;
  /**
   * Other files or folders below watchDir never to touch (each one and anything below it), e.g.
   * a database kept there by mistake: pass its path and its `-wal` and `-shm` siblings.
   */
  excludePaths?: readonly string[];
  /** Files read and hashed at once. Default 4. */
  hashConcurrency?: number;
  /** Name endings of files still being written (write-then-rename). Default `.tmp`, `.part`. */
  tempSuffixes?: readonly string[];
  logger: Logger;
}

/** A file that failed the cheap checks; the caller stores it and calls `finish(reject, 'quarantined')`. */
export interface IngestReject extends FileRef {
  code: RejectCode;
  detail: string;
  /** Null when the content could not be read (or is empty). */
  sha256: string | null;
  bytes: number | null;
  mtimeMs: number | null;
  arrivedAt: number;
}

/**
 * What `isKnown` answers for a path at a size and mtime: falsy = never stored, process it;
 * `true` = stored, skip it; an outcome = stored as that, skip it but finish its disposal (a crash
 * may have come between storing and moving), e.g. archive a 'processed' file still in the folder.
 */
export type KnownAnswer = boolean | FinishOutcome | null | undefined;

export interface IngestHandlers {
  /** A complete, hashed file. Must lead to `finish` or `release` (else it holds a slot). */
  onFile(file: IncomingFile): void | Promise<void>;
  /** A file that failed the cheap checks. Must lead to `finish(reject, 'quarantined')` or `release`. */
  onReject(reject: IngestReject): void | Promise<void>;
  /** Asks the store whether this path, at this size and mtime, is done already. */
  isKnown(relPath: string, size: number, mtimeMs: number): KnownAnswer | Promise<KnownAnswer>;
  /**
   * A move into the archive or quarantine failed: true when the caller reports it itself (a full
   * disk, once for all files); the file stays and the next scan tries again. Default: logged as PW_E_MOVE.
   */
  onMoveFailed?(err: unknown, folder: 'archive' | 'quarantine'): boolean;
}

/** Queue gauges, for the stats topic. */
export interface IngestStats {
  /** Files held: being checked, settling, hashing, or handed on and not yet finished. */
  pending: number;
  /** Of those, waiting for their writer to finish. */
  settling: number;
  /** Of those, handed on (onFile / onReject) and not yet finished. */
  handedOn: number;
  /** Paths noticed while at capacity, waiting for a slot. */
  deferred: number;
  emitted: number;
  rejected: number;
  finished: number;
}

type Phase = 'checking' | 'settling' | 'hashing' | 'handedOn';

/** Most links and special files remembered as reported; beyond that they may be reported again. */
const MAX_REFUSED = 10_000;

/** In polling mode (no inotify), how often the reconciliation scan walks the tree. */
const POLL_WALK_MS = 1000;

interface Entry {
  path: string;
  relPath: string;
  arrivedAt: number;
  phase: Phase;
}

/**
 * Watches a folder (inotify plus a reconciliation scan at start and every rescanIntervalMs; in
 * polling mode, for network file systems, only the scan, every second) and
 * hands on each complete file exactly once: a path is held from the moment it is noticed until
 * the caller calls `finish` (or `release`), never emitted twice meanwhile, and never emitted again
 * once the caller's `isKnown` says it is stored. At most `maxPending` files are held; the rest wait
 * on disk and are taken as slots free.
 */
export class Ingest implements Part {
  readonly name = 'ingest';
  private readonly options: IngestOptions;
  private readonly handlers: IngestHandlers;
  private readonly log: Logger;
  private readonly filter: PathFilter;
  private readonly disposer: FileDisposer;
  private readonly tracker: StabilityTracker;
  /** Undefined in polling mode. */
  private readonly watcher: FolderWatcher | undefined;
  /** Time between reconciliation scans (0: only the one at start). */
  private readonly rescanMs: number;
  private readonly hashing: Limiter;
  private readonly active = new Map<string, Entry>();
  private readonly deferred = new Map<string, number>();
  /** Links and special files already reported, by path: device, inode and mtime when reported. */
  private readonly refused = new Map<string, string>();
  private readonly counters = { emitted: 0, rejected: 0, finished: 0 };
  private overflowed = false;
  private running = false;
  private scanning: Promise<void> | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;

  constructor(options: IngestOptions, handlers: IngestHandlers) {
    this.options = options;
    this.handlers = handlers;
    this.log = options.logger.child({ module: 'ingest' });
    this.filter = new PathFilter({
      watchDir: options.watchDir,
      excludeDirs: [options.archiveDir, options.quarantineDir, ...(options.excludePaths ?? [])],
      tempSuffixes: options.tempSuffixes,
    });
    this.disposer = new FileDisposer({
      onProcessed: options.onProcessed,
      archiveDir: options.archiveDir,
      quarantineDir: options.quarantineDir,
      logger: this.log,
      onMoveFailed: (err, folder) => this.handlers.onMoveFailed?.(err, folder) ?? false,
    });
    this.hashing = new Limiter(options.hashConcurrency ?? 4);
    const pollMs = options.pollMs ?? Math.min(100, Math.max(20, Math.floor(options.stableMs / 4)));
    this.tracker = new StabilityTracker(
      { stableMs: options.stableMs, emptyStableMs: options.emptyStableMs ?? 3 * options.stableMs, pollMs },
      {
        onStable: (path, st) => void this.settled(path, st),
        onGone: (path) => this.drop(path),
        onError: (path, err) => void this.rejectUnreadable(path, err),
      },
    );
    this.watcher = options.usePolling ? undefined : new FolderWatcher({ filter: this.filter, logger: this.log }, (path) => this.touched(path));
    this.rescanMs = options.usePolling ? POLL_WALK_MS : options.rescanIntervalMs;
  }

  /** Creates the folders, starts watching, and starts the first reconciliation scan (not awaited). */
  async start(): Promise<void> {
    const { watchDir, archiveDir, quarantineDir } = this.options;
    for (const dir of [watchDir, archiveDir, quarantineDir]) await mkdir(dir, { recursive: true });
    this.running = true;
    this.tracker.start();
    this.watcher?.start(); // logs PW_E_WATCH itself when the folder cannot be watched
    this.log.info({ watchDir, onProcessed: this.options.onProcessed, maxPending: this.options.maxPending }, 'ingest started');
    void this.rescan();
  }

  /**
   * Stops watching and scanning. Files already handed on stay held: `finish` still works, so the
   * pipeline can drain after ingest has stopped.
   */
  async stop(): Promise<void> {
    this.running = false;
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    this.rescanTimer = undefined;
    this.tracker.stop();
    this.deferred.clear();
    for (const [path, entry] of this.active) if (entry.phase !== 'handedOn') this.active.delete(path);
    this.watcher?.stop();
    await this.scanning;
  }

  /**
   * Walks the whole folder now, noticing every file not held yet (known ones are skipped by
   * `isKnown`). Resolves when the walk ends; concurrent calls share one walk. Never rejects.
   */
  rescan(): Promise<void> {
    if (!this.running) return Promise.resolve();
    this.scanning ??= this.scan().finally(() => {
      this.scanning = undefined;
      this.scheduleRescan();
    });
    return this.scanning;
  }

  /**
   * The caller has stored `file`'s fate: dispose of it (processed/duplicate: the onProcessed
   * action; quarantined: move to quarantineDir) and free its slot. Never throws; a failed move is
   * logged as PW_E_MOVE and reported as action 'failed'.
   */
  async finish(file: FileRef, outcome: FinishOutcome): Promise<DisposeResult> {
    try {
      return await this.disposer.dispose(file, outcome);
    } finally {
      this.counters.finished += 1;
      this.drop(file.path);
    }
  }

  /**
   * Frees `file`'s slot without touching it (e.g. storing failed): a later scan will find it
   * again unless the store knows it by then.
   */
  release(file: FileRef): void {
    this.drop(file.path);
  }

  /** Current queue gauges and totals. */
  stats(): IngestStats {
    let settling = 0;
    let handedOn = 0;
    for (const e of this.active.values()) {
      if (e.phase === 'settling') settling += 1;
      else if (e.phase === 'handedOn') handedOn += 1;
    }
    return { pending: this.active.size, settling, handedOn, deferred: this.deferred.size, ...this.counters };
  }

  /**
   * A watch event for `path`: a file being waited on may have just got its last bytes (checked at
   * once, not at the next poll); any other path is noticed.
   */
  private touched(path: string): void {
    if (this.active.get(path)?.phase === 'settling') this.tracker.check(path);
    else void this.notice(path);
  }

  /** A path was seen (watch event, scan, or taken from the deferred set). */
  private async notice(path: string, firstSeen = Date.now()): Promise<void> {
    if (!this.running || this.active.has(path) || this.filter.ignores(path)) return;
    if (this.active.size >= this.options.maxPending) {
      this.defer(path, firstSeen);
      return;
    }
    this.deferred.delete(path);
    // Claimed synchronously, before any await: no second notice of this path gets past here.
    const entry: Entry = { path, relPath: this.filter.relPath(path), arrivedAt: firstSeen, phase: 'checking' };
    this.active.set(path, entry);
    try {
      let st: Stats;
      try {
        // lstat, never stat: a link is looked at as a link, never followed to its target.
        st = await lstat(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.drop(path);
        else await this.reject(entry, 'PW_E_IMAGE_UNREADABLE', describe(err), null, null);
        return;
      }
      if (st.isDirectory()) {
        this.drop(path); // the watcher and the scan walk folders themselves
        return;
      }
      if (!st.isFile()) {
        await this.refuseSpecial(entry, st);
        return;
      }
      const known = await this.handlers.isKnown(entry.relPath, st.size, st.mtimeMs);
      if (known) {
        await this.settleKnown(entry, known);
        return;
      }
      if (!this.running) {
        this.drop(path);
        return;
      }
      entry.phase = 'settling';
      this.tracker.track(path, st);
      // Already complete (renamed in, or its last bytes came while it was being checked): take it
      // now. In polling mode (network file systems) only the polls decide.
      if (this.watcher) this.tracker.check(path);
    } catch (err) {
      this.log.error({ code: 'PW_E_INTERNAL', err, file: path }, 'checking a new file failed');
      this.drop(path);
    }
  }

  /** The writer is done: check, hash, and hand on (or reject). */
  private async settled(path: string, st: Stats): Promise<void> {
    const entry = this.active.get(path);
    if (!entry || entry.phase !== 'settling') return;
    entry.phase = 'hashing';
    try {
      if (!st.isFile()) {
        // Swapped for a link, FIFO or folder while it settled.
        if (st.isDirectory()) this.drop(path);
        else await this.refuseSpecial(entry, st);
        return;
      }
      const known = await this.handlers.isKnown(entry.relPath, st.size, st.mtimeMs);
      if (known) {
        await this.settleKnown(entry, known);
        return;
      }
      if (st.size === 0) {
        await this.reject(entry, 'PW_E_IMAGE_EMPTY', 'the file has 0 bytes', 0, st.mtimeMs);
        return;
      }
      let digest;
      try {
        digest = await this.hashing.run(() => hashFile(path));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.drop(path);
        else if (isPlankwatchError(err) && (err.code === 'PW_E_IMAGE_LINK' || err.code === 'PW_E_IMAGE_SPECIAL')) await this.reject(entry, err.code, err.detail, null, st.mtimeMs);
        else await this.reject(entry, 'PW_E_IMAGE_UNREADABLE', describe(err), st.size, st.mtimeMs);
        return;
      }
      let after: Stats;
      try {
        after = await lstat(path);
      } catch {
        this.drop(path); // gone while being read
        return;
      }
      if (after.size !== st.size || after.mtimeMs !== st.mtimeMs || digest.bytes !== after.size) {
        // Written to again while being read: wait for the writer once more.
        this.log.debug({ file: path }, 'file changed while hashing; waiting again');
        entry.phase = 'settling';
        if (this.running) {
          this.tracker.track(path, after);
          if (this.watcher) this.tracker.check(path);
        } else this.drop(path);
        return;
      }
      if (!this.running) {
        this.drop(path);
        return;
      }
      const file: IncomingFile = {
        path,
        relPath: entry.relPath,
        sha256: digest.sha256,
        bytes: digest.bytes,
        arrivedAt: entry.arrivedAt,
        mtimeMs: Math.trunc(after.mtimeMs),
      };
      entry.phase = 'handedOn';
      this.counters.emitted += 1;
      this.log.debug({ file: file.relPath, sha256: file.sha256, bytes: file.bytes }, 'file ready');
      await this.handlers.onFile(file);
    } catch (err) {
      this.log.error({ code: 'PW_E_INTERNAL', err, file: path }, 'handing on a file failed; it will be retried by a rescan');
      this.drop(path);
    }
  }

  /** Hands a failed file to the caller as a reject. */
  private async reject(entry: Entry, code: RejectCode, detail: string, bytes: number | null, mtimeMs: number | null): Promise<void> {
    entry.phase = 'handedOn';
    this.counters.rejected += 1;
    // The caller logs the reject once it is stored; a store that cannot take it now (a full disk)
    // sees the file again at every scan, and this line with it.
    this.log.debug({ code, file: entry.relPath, detail }, 'file rejected');
    const reject: IngestReject = {
      path: entry.path,
      relPath: entry.relPath,
      code,
      detail,
      sha256: null,
      bytes,
      mtimeMs: mtimeMs === null ? null : Math.trunc(mtimeMs),
      arrivedAt: entry.arrivedAt,
    };
    try {
      await this.handlers.onReject(reject);
    } catch (err) {
      this.log.error({ code: 'PW_E_INTERNAL', err, file: entry.path }, 'handing on a reject failed');
      this.drop(entry.path);
    }
  }

  private async rejectUnreadable(path: string, err: NodeJS.ErrnoException): Promise<void> {
    const entry = this.active.get(path);
    if (entry) await this.reject(entry, 'PW_E_IMAGE_UNREADABLE', describe(err), null, null);
  }

  /**
   * A symbolic link, FIFO, socket or device where an image should be: never followed nor opened,
   * handed on as a reject (PW_E_IMAGE_LINK or PW_E_IMAGE_SPECIAL, logged) so that the entry itself
   * is quarantined (a link is moved as a link, its target untouched). Reported once per daemon run:
   * one that cannot be moved (a FIFO cannot cross file systems) is passed over by later scans.
   */
  private async refuseSpecial(entry: Entry, st: Stats): Promise<void> {
    const identity = `${st.dev}:${st.ino}:${st.mtimeMs}`;
    if (this.refused.get(entry.path) === identity) {
      this.drop(entry.path);
      return;
    }
    if (this.refused.size >= MAX_REFUSED) this.refused.clear();
    this.refused.set(entry.path, identity);
    const known = await this.handlers.isKnown(entry.relPath, st.size, st.mtimeMs);
    if (known) {
      await this.settleKnown(entry, known);
      return;
    }
    const err = notRegular(entry.relPath, st)!;
    await this.reject(entry, err.code as RejectCode, err.detail, null, st.mtimeMs);
  }

  /** A stored file found in the folder: finish a disposal a crash may have interrupted. */
  private async settleKnown(entry: Entry, known: KnownAnswer): Promise<void> {
    if (typeof known === 'string' && (known === 'quarantined' || this.options.onProcessed !== 'leave')) {
      // Logged once done: a disposal that cannot be done yet (a full disk) is tried at every scan.
      const result = await this.disposer.dispose(entry, known);
      if (result.action !== 'failed') this.log.info({ file: entry.relPath, outcome: known, action: result.action }, 'file already stored; its disposal is finished');
    }
    this.drop(entry.path);
  }

  private defer(path: string, firstSeen: number): void {
    if (this.deferred.has(path)) return;
    if (this.deferred.size >= (this.options.maxDeferred ?? Math.max(1000, 8 * this.options.maxPending))) {
      this.overflowed = true;
      return;
    }
    this.deferred.set(path, firstSeen);
  }

  /** Frees a slot and fills free slots from the deferred paths. */
  private drop(path: string): void {
    this.active.delete(path);
    this.tracker.forget(path);
    this.fill();
  }

  private fill(): void {
    if (!this.running) return;
    for (const [path, firstSeen] of this.deferred) {
      if (this.active.size >= this.options.maxPending) return;
      this.deferred.delete(path);
      void this.notice(path, firstSeen);
    }
    if (this.overflowed && !this.scanning) {
      // Paths were dropped for lack of room: walk again now that there is some.
      this.overflowed = false;
      void this.rescan();
    }
  }

  private async scan(): Promise<void> {
    const started = Date.now();
    let files = 0;
    this.overflowed = false; // this walk is the catch-up for anything dropped before
    try {
      const onError = (dir: string, err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.log.warn({ code: 'PW_E_WATCH', err, dir }, 'could not read a folder during the scan');
      };
      // A folder whose watch was lost or never set gets one again as the walk passes it.
      const onFolder = (dir: string) => this.watcher?.ensure(dir);
      for await (const path of walkFiles(this.filter.watchDir, this.filter, onError, onFolder)) {
        if (!this.running) break;
        files += 1;
        if (this.active.has(path) || this.deferred.has(path)) continue;
        if (this.active.size >= this.options.maxPending) {
          this.defer(path, Date.now());
          if (this.overflowed) break; // no room left to remember more; the next scan continues
          continue;
        }
        await this.notice(path);
      }
    } catch (err) {
      this.log.error({ code: 'PW_E_INTERNAL', err }, 'reconciliation scan failed');
    }
    this.log.debug({ files, ms: Date.now() - started, pending: this.active.size, deferred: this.deferred.size }, 'scan done');
  }

  private scheduleRescan(): void {
    if (!this.running || this.rescanMs <= 0) return;
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    this.rescanTimer = setTimeout(() => {
      this.rescanTimer = undefined;
      void this.rescan();
    }, this.rescanMs);
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : String(err);
}
