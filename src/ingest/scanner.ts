// Reconciliation scan: walks the watch folder so that a missed watch event loses nothing.
import { opendir } from 'node:fs/promises';
import { join } from 'node:path';
import type { PathFilter } from './paths.js';

/**
 * Yields the absolute path of every entry below `root` that the filter accepts and that is not a
 * folder (regular files, and also symbolic links, FIFOs, sockets and devices, for the ingest to
 * report and quarantine), folder by folder, without reading whole trees into memory. Folders the
 * filter rejects are not entered; a symbolic link to a folder is yielded as a link, never entered.
 * A folder that vanishes or cannot be read mid-walk is reported through `onError` and skipped.
 * `onFolder` is called for each folder before it is read (and before any of its files is yielded).
 */
export async function* walkFiles(
  root: string,
  filter: PathFilter,
  onError: (dir: string, err: NodeJS.ErrnoException) => void,
  onFolder?: (dir: string) => void,
): AsyncGenerator<string> {
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    onFolder?.(dir);
    let handle;
    try {
      handle = await opendir(dir);
    } catch (err) {
      onError(dir, err as NodeJS.ErrnoException);
      continue;
    }
    const subdirs: string[] = [];
    for await (const entry of handle) {
      const path = join(dir, entry.name);
      if (filter.ignores(path)) continue;
      // Dirent types come from readdir (no stat): a link to a folder is a link here.
      if (entry.isDirectory()) subdirs.push(path);
      else yield path;
    }
    // Visit subfolders in name order (stack: push reversed).
    subdirs.sort().reverse();
    stack.push(...subdirs);
  }
}
