// kill -9 in the middle of a 500-image ingest, then a restart: every image ends with exactly one row.
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { daemonDirs, startDaemon, until, type DaemonProcess } from '../helpers/daemon.js';
import { manyImages } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';

const TOTAL = 500;
const running: DaemonProcess[] = [];
afterEach(() => {
  for (const d of running.splice(0)) if (d.child.exitCode === null) d.child.kill('SIGKILL');
});

function predictionCount(db: string): number {
  try {
    const conn = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return (conn.prepare('SELECT COUNT(*) AS n FROM predictions').get() as { n: number }).n;
    } finally {
      conn.close();
    }
  } catch {
    return 0;
  }
}

describe('crash safety', () => {
  it('kill -9 mid-ingest then restart: each of 500 images has exactly one frame and one prediction', async () => {
    const images = await manyImages(TOTAL);
    const port = await freePort();
    const dirs = daemonDirs({ publish: { embeddedPort: port }, ingest: { onProcessed: 'archive', maxPending: 64 } });

    const first = startDaemon(dirs.config);
    running.push(first);
    await first.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    for (const [i, image] of images.entries()) writeFileSync(path.join(dirs.incoming, `${String(i).padStart(4, '0')}.jpg`), image.bytes);

    const before = await until(() => {
      const n = predictionCount(dirs.db);
      return n >= 60 ? n : undefined;
    }, 120_000, 'the first results');
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    expect(before).toBeLessThan(TOTAL);

    const second = startDaemon(dirs.config);
    running.push(second);
    await second.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    await until(() => predictionCount(dirs.db) >= TOTAL || undefined, 180_000, `${TOTAL} predictions after restart`);
    // Give any straggler a moment to show up as a second row.
    await new Promise((r) => setTimeout(r, 1500));

    const db = new Database(dirs.db, { readonly: true });
    const rows = db
      .prepare('SELECT f.sha256 AS sha256, COUNT(p.id) AS n FROM frames f LEFT JOIN predictions p ON p.frame_id = f.id GROUP BY f.id')
      .all() as { sha256: string; n: number }[];
    const dupes = (db.prepare("SELECT COUNT(*) AS n FROM frame_sources WHERE role = 'duplicate'").get() as { n: number }).n;
    const rejects = (db.prepare('SELECT COUNT(*) AS n FROM rejects').get() as { n: number }).n;
    db.close();
    expect(rows.length).toBe(TOTAL);
    expect(new Set(rows.map((r) => r.sha256))).toEqual(new Set(images.map((i) => i.sha256)));
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    expect(dupes).toBe(0);
    expect(rejects).toBe(0);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 420_000);

  it('SIGTERM mid-ingest: exits 0 after storing what was in flight; the rest is processed at the next start', async () => {
    const images = await manyImages(200);
    const dirs = daemonDirs({ publish: { embeddedPort: await freePort() }, ingest: { onProcessed: 'archive' } });
    const first = startDaemon(dirs.config);
    running.push(first);
    await first.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    for (const [i, image] of images.entries()) writeFileSync(path.join(dirs.incoming, `${String(i).padStart(4, '0')}.jpg`), image.bytes);
    await until(() => predictionCount(dirs.db) >= 20 || undefined, 120_000, 'the first results');
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const afterStop = predictionCount(dirs.db);
    // Nothing half-done: every file is either stored (and archived) or still waiting in the watch folder.
    const waiting = readdirSync(dirs.incoming).filter((n) => n.endsWith('.jpg')).length;
    const archived = readdirSync(dirs.archive).filter((n) => n.endsWith('.jpg')).length;
    expect(archived).toBe(afterStop);
    expect(waiting + archived).toBe(images.length);

    const second = startDaemon(dirs.config);
    running.push(second);
    await second.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    await until(() => predictionCount(dirs.db) >= images.length || undefined, 120_000, 'all results after restart');
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(predictionCount(dirs.db)).toBe(images.length);
    expect(readdirSync(dirs.archive).filter((n) => n.endsWith('.jpg')).length).toBe(images.length);
  }, 300_000);
});
