import { execFileSync } from 'node:child_process';
import { constants, existsSync, readFileSync, statSync, utimesSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileDisposer, moveFile, type MoveFs, type ProcessedAction } from '../../src/ingest/disposer.js';
import { captureLogger, fixtureFiles, put, sha256Of, tempDir } from './harness.js';

const fx = fixtureFiles();

describe('FileDisposer', () => {
  let root: string;
  let cleanup: () => void;
  let watchDir: string;
  let archiveDir: string;
  let quarantineDir: string;

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir('dispose'));
    watchDir = join(root, 'incoming');
    archiveDir = join(root, 'archive');
    quarantineDir = join(root, 'quarantine');
  });
  afterEach(() => cleanup());

  function disposer(onProcessed: ProcessedAction, fs?: MoveFs) {
    const { logger, lines } = captureLogger();
    return { d: new FileDisposer({ onProcessed, archiveDir, quarantineDir, logger }, fs), lines };
  }

  function landed(relPath: string, fixture = fx[0]!) {
    const path = join(watchDir, ...relPath.split('/'));
    put(path, readFileSync(fixture));
    return { path, relPath };
  }

  it('leave: the file stays where it is', async () => {
    const f = landed('a/b.jpg');
    expect(await disposer('leave').d.dispose(f, 'processed')).toEqual({ action: 'left' });
    expect(existsSync(f.path)).toBe(true);
  });

  it('archive: moves to archiveDir keeping the relative path; a name taken by other bytes gets the content name', async () => {
    const { d } = disposer('archive');
    const f = landed('tow 1/cast/img.jpg');
    const r = await d.dispose(f, 'processed');
    const dest = join(archiveDir, 'tow 1', 'cast', 'img.jpg');
    expect(r).toEqual({ action: 'archived', dest });
    expect(existsSync(f.path)).toBe(false);
    expect(readFileSync(dest)).toEqual(readFileSync(fx[0]!));
    // The same name again (a camera restarting its numbering) does not overwrite.
    const again = landed('tow 1/cast/img.jpg', fx[1]!);
    const r2 = await d.dispose(again, 'duplicate'); // duplicates follow the processed action
    expect(r2).toEqual({ action: 'archived', dest: join(archiveDir, 'tow 1', 'cast', `img.${sha256Of(fx[1]!)}.jpg`) });
    expect(readFileSync(dest)).toEqual(readFileSync(fx[0]!));
    expect(readFileSync(r2.dest!)).toEqual(readFileSync(fx[1]!));
  });

  it('archive and delete: a file written again after it was read (another SHA-256 now) is left for the next scan', async () => {
    for (const action of ['archive', 'delete'] as const) {
      const { d, lines } = disposer(action);
      const f = landed('again.jpg', fx[1]!);
      const r = await d.dispose({ ...f, sha256: sha256Of(fx[0]!) }, 'processed');
      expect(r).toEqual({ action: 'left' });
      expect(readFileSync(f.path)).toEqual(readFileSync(fx[1]!));
      expect(existsSync(join(archiveDir, 'again.jpg'))).toBe(false);
      expect(lines.some((l) => l.code === 'PW_E_IMAGE_MISMATCH' && l.file === 'again.jpg')).toBe(true);
    }
  });

  it('archive: a symlink or FIFO is never archived; a link is quarantined as a link', async () => {
    const { d, lines } = disposer('archive');
    const target = join(root, 'target.jpg');
    put(target, readFileSync(fx[0]!));
    await fsp.mkdir(watchDir, { recursive: true });
    const link = join(watchDir, 'link.jpg');
    await fsp.symlink(target, link);
    expect(await d.dispose({ path: link, relPath: 'link.jpg' }, 'processed')).toEqual({ action: 'failed' });
    expect(lines.some((l) => l.code === 'PW_E_MOVE' && (l.err as { code?: string }).code === 'PW_E_IMAGE_LINK')).toBe(true);
    const q = await d.dispose({ path: link, relPath: 'link.jpg' }, 'quarantined');
    expect(q).toEqual({ action: 'quarantined', dest: join(quarantineDir, 'link.jpg') });
    expect((await fsp.lstat(q.dest!)).isSymbolicLink()).toBe(true);
    expect(readFileSync(target)).toEqual(readFileSync(fx[0]!));
  });

  it('delete: removes processed and duplicate files', async () => {
    const { d } = disposer('delete');
    const a = landed('a.jpg');
    const b = landed('b.jpg');
    expect(await d.dispose(a, 'processed')).toEqual({ action: 'deleted' });
    expect(await d.dispose(b, 'duplicate')).toEqual({ action: 'deleted' });
    expect(existsSync(a.path) || existsSync(b.path)).toBe(false);
  });

  it('quarantine: always moves (never deletes), keeping the relative path, suffixing clashes', async () => {
    for (const action of ['leave', 'archive', 'delete'] as const) {
      const { d } = disposer(action);
      const f = landed('cam/bad.jpg');
      const r = await d.dispose(f, 'quarantined');
      expect(r.action).toBe('quarantined');
      expect(existsSync(f.path)).toBe(false);
      expect(existsSync(r.dest!)).toBe(true);
    }
    expect((await fsp.readdir(join(quarantineDir, 'cam'))).sort()).toEqual(['bad-1.jpg', 'bad-2.jpg', 'bad.jpg']);
  });

  it('a failed move is logged as PW_E_MOVE and reported, not thrown', async () => {
    const { d, lines } = disposer('archive');
    const r = await d.dispose({ path: join(watchDir, 'gone.jpg'), relPath: 'gone.jpg' }, 'processed');
    expect(r).toEqual({ action: 'failed' });
    expect(lines.some((l) => l.code === 'PW_E_MOVE' && l.level === 50)).toBe(true);
  });

  it('across file systems (EXDEV) falls back to copy + unlink and keeps the mtime', async () => {
    // rename is made to fail with EXDEV: a second file system cannot be assumed on every machine.
    const exdev: MoveFs = {
      rename: async () => {
        throw Object.assign(new Error('cross-device link not permitted'), { code: 'EXDEV' });
      },
      copyFile: fsp.copyFile,
      unlink: fsp.unlink,
    };
    const f = landed('x/y.jpg');
    utimesSync(f.path, new Date(1_600_000_000_000), new Date(1_600_000_000_000));
    const r = await disposer('archive', exdev).d.dispose(f, 'processed');
    expect(r.action).toBe('archived');
    expect(existsSync(f.path)).toBe(false);
    expect(readFileSync(r.dest!)).toEqual(readFileSync(fx[0]!));
    expect(statSync(r.dest!).mtimeMs).toBe(1_600_000_000_000);
  });

  it('across file systems a link is moved as a link (never its target copied) and a FIFO is left, never opened', async () => {
    const exdev: MoveFs = {
      rename: async () => {
        throw Object.assign(new Error('cross-device link not permitted'), { code: 'EXDEV' });
      },
      copyFile: fsp.copyFile,
      unlink: fsp.unlink,
    };
    const { d, lines } = disposer('archive', exdev);
    await fsp.mkdir(watchDir, { recursive: true });
    const link = join(watchDir, 'link.jpg');
    await fsp.symlink('/etc/passwd', link);
    const q = await d.dispose({ path: link, relPath: 'link.jpg' }, 'quarantined');
    expect(q.action).toBe('quarantined');
    expect(await fsp.readlink(q.dest!)).toBe('/etc/passwd');
    expect(existsSync(link)).toBe(false);
    const fifo = join(watchDir, 'y.jpg');
    execFileSync('mkfifo', [fifo]);
    expect(await d.dispose({ path: fifo, relPath: 'y.jpg' }, 'quarantined')).toEqual({ action: 'failed' });
    expect(lines.some((l) => l.code === 'PW_E_MOVE' && (l.err as { code?: string }).code === 'PW_E_IMAGE_SPECIAL')).toBe(true);
    expect((await fsp.lstat(fifo)).isFIFO()).toBe(true);
  });

  it('if the source cannot be removed after a cross-device copy, the copy is removed too', async () => {
    const stuck: MoveFs = {
      rename: async () => {
        throw Object.assign(new Error('cross-device'), { code: 'EXDEV' });
      },
      copyFile: fsp.copyFile,
      unlink: async () => {
        throw Object.assign(new Error('permission denied'), { code: 'EACCES' });
      },
    };
    const f = landed('z.jpg');
    const { d, lines } = disposer('archive', stuck);
    expect(await d.dispose(f, 'processed')).toEqual({ action: 'failed' });
    expect(existsSync(f.path)).toBe(true);
    expect(existsSync(join(archiveDir, 'z.jpg'))).toBe(false);
    expect(lines.some((l) => l.code === 'PW_E_MOVE')).toBe(true);
  });

  it('moves across real file systems when /dev/shm is a separate one', async (ctx) => {
    const shm = '/dev/shm';
    if (!existsSync(shm) || statSync(shm).dev === statSync(tmpdir()).dev) ctx.skip();
    const dir = await fsp.mkdtemp(join(shm, 'pw-dispose-'));
    try {
      const f = landed('real.jpg');
      const dest = join(dir, 'sub', 'real.jpg');
      await moveFile(f.path, dest);
      expect(existsSync(f.path)).toBe(false);
      expect(readFileSync(dest)).toEqual(readFileSync(fx[0]!));
      await expect(fsp.access(dest, constants.R_OK)).resolves.toBeUndefined();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
