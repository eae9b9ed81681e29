// Running out of disk, as one state per folder the daemon writes: the database's folder, the
// archive and quarantine. A write refused for lack of space (ENOSPC, EDQUOT, SQLITE_FULL) puts its
// folder in the state: one log line (PW_E_DISK_FULL), /health degraded, plankwatch_disk_full 1.
// Meanwhile the folder is probed every few seconds with a test write; when one succeeds, one line
// says space is back and the work that waited is retried. Nothing is lost meanwhile: a file leaves
// the watch folder only after its result is stored.
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDiskFull } from '../errors.js';
import type { HealthCheck } from '../http/index.js';
import type { Logger } from '../log.js';
import type { Part } from '../types.js';

/** A folder the daemon writes, by role. */
export type DiskFolder = 'store' | 'archive' | 'quarantine';

export interface DiskSpaceOptions {
  /** Each folder's path: the database's folder (of store.path), ingest.archiveDir, ingest.quarantineDir. */
  folders: Record<DiskFolder, string>;
  /** How often a full folder is probed, in ms. Default 5000. */
  probeMs?: number;
  /** Bytes a probe writes: space is back when this much can be written again. Default 1 MiB. */
  probeBytes?: number;
  /** Called when space is back in any folder: retry the work that waited (a rescan of the watch folder). */
  onSpaceBack: () => void;
  logger: Logger;
}

/** What a full folder stops, in a technician's words, and the config key that names it. */
const ROLE: Record<DiskFolder, { what: string; key: string; meanwhile: string }> = {
  store: { what: 'the database', key: "store.path's folder", meanwhile: 'classification pauses and images wait in the watch folder' },
  archive: { what: 'the archive', key: 'ingest.archiveDir', meanwhile: 'classified images stay in the watch folder until they can be moved' },
  quarantine: { what: 'quarantine', key: 'ingest.quarantineDir', meanwhile: 'rejected files stay in the watch folder until they can be moved' },
};

/** The probe file: hidden, and with a suffix ingest ignores, should a folder lie under the watch folder. */
const PROBE_NAME = `.plankwatch-space-probe-${process.pid}.tmp`;

interface Full {
  since: number;
}

/** Whether each folder the daemon writes has room; see the file comment. */
export class DiskSpace implements Part {
  readonly name = 'disk space';
  private readonly options: DiskSpaceOptions;
  private readonly log: Logger;
  private readonly full = new Map<DiskFolder, Full>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: DiskSpaceOptions) {
    this.options = options;
    this.log = options.logger;
  }

  start(): void {
    // Nothing to start: a folder is probed only once a write to it was refused.
  }

  /** Stops probing (the state is kept). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** True while `folder` (without argument: any folder) is full. */
  isFull(folder?: DiskFolder): boolean {
    return folder === undefined ? this.full.size > 0 : this.full.has(folder);
  }

  /**
   * A write into `folder` failed. When for lack of space, the folder enters the full state (logged
   * once, however many files fail) and true is returned, so the caller logs nothing more; else false.
   */
  report(err: unknown, folder: DiskFolder): boolean {
    if (!isDiskFull(err)) return false;
    if (this.full.has(folder)) return true;
    this.full.set(folder, { since: Date.now() });
    const role = ROLE[folder];
    const dir = this.options.folders[folder];
    const free = freeBytes(dir);
    const probeS = this.probeMs() / 1000;
    this.log.error(
      { code: 'PW_E_DISK_FULL', folder, path: dir, freeBytes: free, reason: describe(err) },
      `no space left for ${role.what} (${role.key}: ${dir}, ${formatBytes(free)} free): ${role.meanwhile}; nothing is lost. Free space there; the daemon checks every ${probeS} s and resumes by itself`,
    );
    if (!this.timer && !this.stopped) {
      this.timer = setInterval(() => this.probe(), this.probeMs());
      this.timer.unref();
    }
    return true;
  }

  /** Free bytes in each folder's file system (for the unprivileged user); null where unreadable. */
  freeBytes(): { folder: DiskFolder; bytes: number | null }[] {
    return (Object.keys(this.options.folders) as DiskFolder[]).map((folder) => ({ folder, bytes: freeBytes(this.options.folders[folder]) }));
  }

  /** The `disk` check of /health: not ok while any folder is full. */
  health(): HealthCheck {
    if (this.full.size === 0) return { ok: true, detail: `${formatBytes(freeBytes(this.options.folders.store))} free for the database` };
    const parts = [...this.full].map(([folder, f]) => {
      const dir = this.options.folders[folder];
      return `${ROLE[folder].what} (${dir}) full since ${new Date(f.since).toISOString()}, ${formatBytes(freeBytes(dir))} free`;
    });
    return { ok: false, detail: `PW_E_DISK_FULL: ${parts.join('; ')}; images wait in the watch folder` };
  }

  private probeMs(): number {
    return this.options.probeMs ?? 5000;
  }

  /** Each full folder: a test write; where it succeeds, space is back (one line) and the waiting work is retried. */
  private probe(): void {
    let back = false;
    for (const [folder, f] of [...this.full]) {
      const dir = this.options.folders[folder];
      if (!this.writable(dir)) continue;
      this.full.delete(folder);
      back = true;
      const role = ROLE[folder];
      this.log.info(
        { folder, path: dir, freeBytes: freeBytes(dir), fullS: Math.round((Date.now() - f.since) / 1000) },
        `disk space is back for ${role.what} (${role.key}: ${dir}, ${formatBytes(freeBytes(dir))} free): taking the files that waited`,
      );
    }
    if (this.full.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (back) this.options.onSpaceBack();
  }

  /** True when `probeBytes` can be written in `dir` now. A failure other than a full disk counts as room: real writes will report it for what it is. */
  private writable(dir: string): boolean {
    const bytes = this.options.probeBytes ?? 1 << 20;
    const free = freeBytes(dir);
    if (free !== null && free < bytes) return false;
    const file = path.join(dir, PROBE_NAME);
    try {
      writeFileSync(file, Buffer.alloc(bytes));
      return true;
    } catch (err) {
      return !isDiskFull(err);
    } finally {
      rmSync(file, { force: true });
    }
  }
}

/** Bytes the daemon's user may still write in `dir`'s file system, or null. */
export function freeBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

function formatBytes(n: number | null): string {
  if (n === null) return 'unknown space';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** The failure in one line, without a stack: the innermost message. */
function describe(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; code?: string } | undefined;
  while (e && typeof e === 'object' && e.cause && typeof e.cause === 'object') e = e.cause as typeof e;
  return e?.code ? `${e.code}: ${e.message ?? ''}` : String(e?.message ?? err);
}
