// Noticing a promotion made by another process (`plankwatch models promote|rollback` while the
// daemon runs): poll the ensemble file's identity (inode, size, mtime) and, when it changes, read
// it and report a new version. Promotion renames a whole file into place, so a read never sees a
// half-written one.
import { readFile, stat } from 'node:fs/promises';
import type { EnsembleFile } from '../classify/meta.js';
import type { Part } from '../types.js';

export interface EnsembleWatcherOptions {
  file: string;
  intervalMs: number;
  /** Version active when watching starts (changes to the same version are ignored). */
  initialVersion: string | null;
  onChange: (ensemble: EnsembleFile) => Promise<void> | void;
  onError: (err: unknown) => void;
}

export class EnsembleWatcher implements Part {
  readonly name = 'ensemble watcher';
  private readonly opts: EnsembleWatcherOptions;
  private timer: NodeJS.Timeout | null = null;
  private identity = '';
  private version: string | null;
  private busy = false;

  constructor(options: EnsembleWatcherOptions) {
    this.opts = options;
    this.version = options.initialVersion;
  }

  async start(): Promise<void> {
    this.identity = await this.currentIdentity();
    this.timer = setInterval(() => void this.check(), Math.max(50, this.opts.intervalMs));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Tell the watcher a version is already active (made so by this process): no change reported for it. */
  acknowledge(version: string): void {
    this.version = version;
  }

  /** One poll (also called by the timer). */
  async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const id = await this.currentIdentity();
      if (id === this.identity || id === '') return;
      const ensemble = JSON.parse(await readFile(this.opts.file, 'utf8')) as EnsembleFile;
      this.identity = id;
      if (ensemble.version === this.version) return;
      await this.opts.onChange(ensemble);
      this.version = ensemble.version;
    } catch (err) {
      this.opts.onError(err);
    } finally {
      this.busy = false;
    }
  }

  private async currentIdentity(): Promise<string> {
    try {
      const s = await stat(this.opts.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return '';
    }
  }
}
