// The folder watcher on real folders: inotify events, folders that appear, move in and vanish,
// excluded folders, and watches given back by the rescan.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PathFilter } from '../../src/ingest/paths.js';
import { FolderWatcher } from '../../src/ingest/watcher.js';
import { captureLogger, put, sleep, tempDir, waitFor } from './harness.js';

describe('FolderWatcher', () => {
  let watcher: FolderWatcher | undefined;
  let cleanups: (() => void)[] = [];
  afterEach(() => {
    watcher?.stop();
    watcher = undefined;
    for (const c of cleanups) c();
    cleanups = [];
  });

  function root(): string {
    const { dir, cleanup } = tempDir('watcher');
    cleanups.push(cleanup);
    return dir;
  }

  async function startWatcher(top: string) {
    const watchDir = join(top, 'incoming');
    mkdirSync(join(watchDir, 'archive'), { recursive: true });
    const filter = new PathFilter({ watchDir, excludeDirs: [join(watchDir, 'archive')] });
    const seen = new Set<string>();
    const { logger, lines } = captureLogger();
    watcher = new FolderWatcher({ filter, logger }, (p) => seen.add(p));
    watcher.start();
    return { watchDir, seen, lines, w: watcher };
  }

  it('reports a new file by its path, and never temp names or the excluded folder', async () => {
    const { watchDir, seen, w } = await startWatcher(root());
    expect(w.watchedFolders).toBe(1); // the watch folder; subfolders get theirs from the scan or their event
    put(join(watchDir, 'a.jpg'), 'x');
    put(join(watchDir, 'b.jpg.tmp'), 'x');
    put(join(watchDir, 'archive', 'old.jpg'), 'x');
    renameSync(join(watchDir, 'b.jpg.tmp'), join(watchDir, 'b.jpg'));
    await waitFor(() => seen.has(join(watchDir, 'a.jpg')) && seen.has(join(watchDir, 'b.jpg')), 5000, 'a.jpg and b.jpg');
    await sleep(200);
    expect([...seen].filter((p) => p.endsWith('.tmp') || p.includes('archive'))).toEqual([]);
  });

  it('a folder made after start is watched at once: files written straight after mkdir, and later ones, are reported', async () => {
    const { watchDir, seen, w } = await startWatcher(root());
    const deep = join(watchDir, 'tow2', 'cast1');
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'early.jpg'), 'x'); // may land before the new folder has its watch
    await waitFor(() => seen.has(join(deep, 'early.jpg')), 5000, 'early.jpg');
    expect(w.watchedFolders).toBe(3);
    writeFileSync(join(deep, 'later.jpg'), 'x');
    await waitFor(() => seen.has(join(deep, 'later.jpg')), 5000, 'later.jpg');
  });

  it('a folder moved in with files reports them; a removed folder loses its watches', async () => {
    const top = root();
    const { watchDir, seen, w } = await startWatcher(top);
    const outside = join(top, 'staging', 'batch');
    put(join(outside, 'one.jpg'), 'x');
    put(join(outside, 'sub', 'two.jpg'), 'x');
    renameSync(join(top, 'staging'), join(watchDir, 'staging'));
    const moved = join(watchDir, 'staging', 'batch');
    await waitFor(() => seen.has(join(moved, 'one.jpg')) && seen.has(join(moved, 'sub', 'two.jpg')), 5000, 'moved files');
    expect(w.watchedFolders).toBe(4);
    rmSync(join(watchDir, 'staging'), { recursive: true });
    await waitFor(() => w.watchedFolders === 1, 5000, 'watches of the removed folder closed');
  });

  it('files made while stopped are left to the scan; a folder removed and made again is watched again', async () => {
    const { watchDir, seen, w } = await startWatcher(root());
    w.stop();
    expect(w.watchedFolders).toBe(0);
    put(join(watchDir, 'missed', 'c.jpg'), 'x'); // made while nothing watched
    w.start();
    expect(w.watchedFolders).toBe(1); // the root: the ingest's scan ensures the rest as it walks
    w.ensure(join(watchDir, 'missed'));
    expect(w.watchedFolders).toBe(2);
    expect(seen.size).toBe(0); // files already there are left to the ingest's scan
    rmSync(join(watchDir, 'missed'), { recursive: true });
    await waitFor(() => w.watchedFolders === 1, 5000, 'watch closed');
    put(join(watchDir, 'missed', 'd.jpg'), 'x');
    await waitFor(() => seen.has(join(watchDir, 'missed', 'd.jpg')), 5000, 'd.jpg by its event');
    w.ensure(join(watchDir, 'missed'));
    expect(w.watchedFolders).toBe(2); // already watched: no second watch
  });

  it('the watch folder itself removed and made again: ensure (the rescan) watches it again', async () => {
    const { watchDir, seen, w } = await startWatcher(root());
    rmSync(watchDir, { recursive: true });
    await waitFor(() => w.watchedFolders === 0, 5000, 'watch on the removed folder dropped');
    w.ensure(watchDir); // gone: nothing to watch, no error
    expect(w.watchedFolders).toBe(0);
    mkdirSync(watchDir);
    w.ensure(watchDir);
    expect(w.watchedFolders).toBe(1);
    put(join(watchDir, 'g.jpg'), 'x');
    await waitFor(() => seen.has(join(watchDir, 'g.jpg')), 5000, 'g.jpg by its event');
  });
});
