// A full disk, for real: the database, archive and quarantine live on a small tmpfs that the test
// fills to the last block; the watch folder is on another file system, as the camera's disk is.
// The daemon (built, as a child process) must say so once (PW_E_DISK_FULL, no stack, not once per
// file and rescan), report it on /health (503, degraded) and /metrics, lose nothing (every image
// still in the watch folder), and when space returns say so once and take every waiting file.
// Mounting a tmpfs needs root (CAP_SYS_ADMIN); elsewhere the test is skipped and says why.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { daemonDirs, startDaemon, until, type DaemonProcess } from '../helpers/daemon.js';
import { badFiles, fixtureImages } from '../helpers/images.js';

/** A 24 MiB tmpfs of our own, or why there is none. */
function mountTmpfs(): { dir: string; ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'tmpfs mounts need Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'mounting a tmpfs needs root; run as root (as CI does) to test a full disk' };
  const dir = mkdtempSync(path.join(tmpdir(), 'pw-diskfull-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0755', 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { ok: false, reason: `mount -t tmpfs is not permitted here (${(r.stderr || r.error?.message || '').trim()})` };
  }
  return { ok: true, dir };
}

const fsys = mountTmpfs();
const title = fsys.ok ? 'a full disk under the database' : `a full disk under the database (skipped: ${fsys.reason})`;

afterAll(() => {
  if (fsys.ok) {
    spawnSync('umount', ['-l', fsys.dir]);
    rmSync(fsys.dir, { recursive: true, force: true });
  }
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** Writes `file` until the file system refuses: 1 MiB, then 4 KiB at a time. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (const size of [1 << 20, 4096, 512]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

function files(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).filter((n) => path.extname(n) !== '').sort() : [];
}

function metric(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe.skipIf(!fsys.ok)(title, () => {
  it('one line when the disk fills, health degraded and a metric meanwhile, nothing lost, one line when space returns', async () => {
    if (!fsys.ok) return;
    const data = path.join(fsys.dir, 'data');
    mkdirSync(data);
    const dirs = daemonDirs({
      store: { path: path.join(data, 'plankwatch.db'), countsWindowS: 86400 },
      ingest: { archiveDir: path.join(data, 'archive'), quarantineDir: path.join(data, 'quarantine'), rescanIntervalS: 1, stableMs: 200 },
    });
    const daemon: DaemonProcess = startDaemon(dirs.config);
    cleanups.push(() => {
      if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    });
    const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    const http = ready.http as string;
    expect((await fetch(`${http}/health`)).status).toBe(200);

    // The disk fills up (another program's file), then the camera delivers.
    const filler = path.join(data, 'filler.bin');
    fill(filler);
    const firstLog = daemon.logs.length;
    const images = fixtureImages().slice(0, 6);
    const bad = (await badFiles(images[0]!.bytes)).filter((b) => b.name === 'empty.jpg' || b.name === 'truncated.jpg');
    for (const image of images) writeFileSync(path.join(dirs.incoming, image.name), image.bytes);
    for (const b of bad) writeFileSync(path.join(dirs.incoming, b.name), b.bytes);
    const dropped = [...images.map((i) => i.name), ...bad.map((b) => b.name)].sort();

    const entered = await daemon.waitForLog((l) => l.code === 'PW_E_DISK_FULL', 30_000);
    expect(entered.level).toBeGreaterThanOrEqual(40);
    expect(entered.err, 'the disk-full line carries no stack').toBeUndefined();
    expect(String(entered.msg)).toContain('store.path');

    // Meanwhile: /health degraded, the metric set, and every file still in the watch folder.
    const health = await fetch(`${http}/health`);
    expect(health.status).toBe(503);
    const body = (await health.json()) as { status: string; checks: Record<string, { ok: boolean; detail?: string }> };
    expect(body.status).toBe('degraded');
    expect(body.checks.disk?.ok).toBe(false);
    expect(body.checks.disk?.detail).toContain('PW_E_DISK_FULL');
    expect(body.checks.store?.ok).toBe(false);
    const metricsFull = await (await fetch(`${http}/metrics`)).text();
    expect(metric(metricsFull, 'plankwatch_disk_full')).toBe(1);
    expect(metricsFull).toMatch(/plankwatch_disk_free_bytes\{folder="store"\} \d+/);

    // Several rescans later (one a second): still that one line, nothing logged per file.
    await new Promise((r) => setTimeout(r, 5000));
    const during = daemon.logs.slice(firstLog);
    expect(during.filter((l) => l.code === 'PW_E_DISK_FULL')).toHaveLength(1);
    expect(during.filter((l) => l.code === 'PW_E_INTERNAL' || l.code === 'PW_E_DB' || l.code === 'PW_E_MOVE')).toEqual([]);
    expect(during.filter((l) => (l.level as number) >= 40 && l.code !== 'PW_E_DISK_FULL')).toEqual([]);
    expect(files(dirs.incoming)).toEqual(dropped);
    expect(daemon.child.exitCode).toBeNull();

    // Space returns: one line, and every waiting file is taken.
    unlinkSync(filler);
    const back = await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('disk space is back'), 30_000);
    expect(back.level).toBe(30);
    await until(() => files(dirs.incoming).length === 0 || undefined, 60_000, 'the watch folder to empty');
    await until(() => files(path.join(data, 'quarantine')).length === bad.length || undefined, 30_000, 'the bad files in quarantine');
    expect(files(path.join(data, 'archive'))).toEqual(images.map((i) => i.name).sort());
    const db = new Database(path.join(data, 'plankwatch.db'), { readonly: true });
    const frames = (db.prepare('SELECT count(*) AS n FROM frames').get() as { n: number }).n;
    const rejects = (db.prepare('SELECT count(*) AS n FROM rejects').get() as { n: number }).n;
    db.close();
    expect({ frames, rejects }).toEqual({ frames: images.length, rejects: bad.length });

    expect((await fetch(`${http}/health`)).status).toBe(200);
    expect(metric(await (await fetch(`${http}/metrics`)).text(), 'plankwatch_disk_full')).toBe(0);
    const all = daemon.logs.slice(firstLog);
    expect(all.filter((l) => l.code === 'PW_E_DISK_FULL')).toHaveLength(1);
    expect(all.filter((l) => typeof l.msg === 'string' && l.msg.includes('disk space is back'))).toHaveLength(1);
    expect(all.filter((l) => l.code === 'PW_E_INTERNAL')).toEqual([]);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 240_000);

  it('a full archive: results are stored, images stay in the watch folder (one line, not one per file and scan), archived once space returns', async () => {
    if (!fsys.ok) return;
    const archive = path.join(fsys.dir, 'archive-only');
    mkdirSync(archive);
    const dirs = daemonDirs({ ingest: { archiveDir: archive, rescanIntervalS: 1, stableMs: 200 } });
    const daemon: DaemonProcess = startDaemon(dirs.config);
    cleanups.push(() => {
      if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    });
    const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    const http = ready.http as string;
    const filler = path.join(fsys.dir, 'filler.bin');
    fill(filler);
    const firstLog = daemon.logs.length;
    const images = fixtureImages().slice(6, 10);
    for (const image of images) writeFileSync(path.join(dirs.incoming, image.name), image.bytes);

    const entered = await daemon.waitForLog((l) => l.code === 'PW_E_DISK_FULL', 30_000);
    expect(entered.folder).toBe('archive');
    expect(String(entered.msg)).toContain('ingest.archiveDir');
    // Every result is stored; the images wait.
    await until(() => {
      const db = new Database(dirs.db, { readonly: true });
      const n = (db.prepare('SELECT count(*) AS n FROM frames').get() as { n: number }).n;
      db.close();
      return n === images.length || undefined;
    }, 30_000, 'every result stored');
    await new Promise((r) => setTimeout(r, 4000)); // several rescans try the moves again
    const body = (await (await fetch(`${http}/health`)).json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(body).toMatchObject({ status: 'degraded', checks: { store: { ok: true }, disk: { ok: false } } });
    expect(files(dirs.incoming)).toEqual(images.map((i) => i.name).sort());
    const during = daemon.logs.slice(firstLog);
    expect(during.filter((l) => l.code === 'PW_E_DISK_FULL')).toHaveLength(1);
    expect(during.filter((l) => (l.level as number) >= 40 && l.code !== 'PW_E_DISK_FULL')).toEqual([]);
    expect(during.filter((l) => typeof l.msg === 'string' && l.msg.includes('disposal'))).toEqual([]);

    unlinkSync(filler);
    await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('disk space is back for the archive'), 30_000);
    await until(() => files(dirs.incoming).length === 0 || undefined, 30_000, 'the watch folder to empty');
    expect(files(archive)).toEqual(images.map((i) => i.name).sort());
    expect((await fetch(`${http}/health`)).status).toBe(200);
    expect(daemon.logs.slice(firstLog).filter((l) => l.code === 'PW_E_DISK_FULL' || l.code === 'PW_E_MOVE')).toHaveLength(1);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 240_000);
});
