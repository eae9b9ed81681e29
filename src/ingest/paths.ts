// Which paths under the watch folder are candidates, and how they are named in the database.
import { isAbsolute, relative, resolve, sep } from 'node:path';

/** Suffixes that write-then-rename writers use for files still being written. */
export const DEFAULT_TEMP_SUFFIXES: readonly string[] = ['.tmp', '.part'];

export interface PathFilterOptions {
  watchDir: string;
  /** Folders (or single files) never to look into (archive, quarantine), even when inside watchDir. */
  excludeDirs: readonly string[];
  /** Names ending in one of these (any case) are skipped. Default `.tmp`, `.part`. */
  tempSuffixes?: readonly string[];
}

/** True when `child` is `parent` or lies below it (both absolute). */
export function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Decides which paths the watcher and the scanner skip: anything outside watchDir, the excluded
 * folders and their contents, and (below watchDir) names starting with "." or ending in a temp
 * suffix, whether file or folder.
 */
export class PathFilter {
  readonly watchDir: string;
  private readonly excludeDirs: readonly string[];
  private readonly suffixes: readonly string[];

  constructor(options: PathFilterOptions) {
    this.watchDir = resolve(options.watchDir);
    this.excludeDirs = options.excludeDirs.map((d) => resolve(d));
    this.suffixes = (options.tempSuffixes ?? DEFAULT_TEMP_SUFFIXES).map((s) => s.toLowerCase());
  }

  /** True if this path must not be processed nor descended into. */
  ignores(path: string): boolean {
    const abs = resolve(path);
    if (!isInside(abs, this.watchDir)) return true;
    if (this.excludeDirs.some((d) => isInside(abs, d))) return true;
    const rel = relative(this.watchDir, abs);
    if (rel === '') return false;
    return rel.split(sep).some((part) => this.isTempName(part));
  }

  /** True for a single name that a writer uses while a file is incomplete, or a hidden one. */
  isTempName(name: string): boolean {
    const lower = name.toLowerCase();
    return name.startsWith('.') || this.suffixes.some((s) => lower.endsWith(s));
  }

  /** The path relative to watchDir with forward slashes, as stored. */
  relPath(path: string): string {
    return relative(this.watchDir, resolve(path)).split(sep).join('/');
  }
}
