// The figures a technician compares (classified, duplicates, quarantined) come from one source, the
// database: `plankwatch status`, /metrics and the MQTT stats topic agree after the same image
// arrives again and again (under its own name, as a camera re-writing a file does, and under new
// names), and still agree after a restart. And `plankwatch counts` / `status` only read: a
// database at an older schema is not migrated by them (the first read after an upgrade used to
// build migration 3's index over every prediction: seconds on a large database).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/db.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { daemonDirs, REPO_ROOT, startDaemon, until, type DaemonProcess } from '../helpers/daemon.js';
import { badFiles, fixtureImages } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Figures {
  classified: number;
  duplicates: number;
  quarantined: number;
}

async function statusFigures(config: string): Promise<Figures & { schemaVersion: number }> {
  const { stdout } = await run(process.execPath, [CLI, 'status', '--json', '-c', config], { cwd: REPO_ROOT });
  const s = JSON.parse(stdout) as { frames: number; duplicates: number; rejects: { total: number }; schemaVersion: number };
  return { classified: s.frames, duplicates: s.duplicates, quarantined: s.rejects.total, schemaVersion: s.schemaVersion };
}

async function metricsFigures(httpUrl: string): Promise<Figures> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const sum = (name: string): number =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    classified: sum('plankwatch_frames_classified_total'),
    duplicates: sum('plankwatch_duplicates_total'),
    quarantined: sum('plankwatch_quarantined_total'),
  };
}

function imagesIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((n) => path.extname(n) !== '');
}

describe('one source for the figures', () => {
  it('status, /metrics and MQTT stats agree after the same image arrives 10 times, and after a restart', async () => {
    const port = await freePort();
    const dirs = daemonDirs({ publish: { embeddedPort: port, statsIntervalS: 1 }, ingest: { rescanIntervalS: 1 } });
    const start = async (): Promise<{ daemon: DaemonProcess; http: string }> => {
      const daemon = startDaemon(dirs.config);
      cleanups.push(() => {
        if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
      });
      const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
      return { daemon, http: ready.http as string };
    };
    let { daemon, http } = await start();

    const stats: Figures[] = [];
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'numbers-sub', reconnectPeriod: 500 });
    cleanups.push(() => sub.endAsync());
    sub.on('message', (topic, payload) => {
      if (topic.endsWith('/stats')) stats.push(JSON.parse(payload.toString()) as Figures);
    });
    await sub.subscribeAsync('plankwatch/test-cam/stats', { qos: 1 });

    const image = fixtureImages()[0]!;
    // The camera writes the same file name again after each one was archived: 6 arrivals.
    for (let i = 0; i < 6; i++) {
      writeFileSync(path.join(dirs.incoming, 'frame.jpg'), image.bytes);
      await until(() => !existsSync(path.join(dirs.incoming, 'frame.jpg')), 30_000, `arrival ${i + 1} of frame.jpg to be archived`);
    }
    // And under 4 new names at once; with 2 files that are not images.
    mkdirSync(path.join(dirs.incoming, 'copies'), { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(path.join(dirs.incoming, 'copies', `copy-${i}.jpg`), image.bytes);
    const bad = (await badFiles(image.bytes)).slice(1, 3);
    for (const b of bad) writeFileSync(path.join(dirs.incoming, b.name), b.bytes);
    await until(() => imagesIn(dirs.incoming).length === 0 || undefined, 30_000, 'the watch folder to empty');
    await until(() => (existsSync(dirs.quarantine) && readdirSync(dirs.quarantine).length === 2) || undefined, 30_000, 'two files in quarantine');

    const expected: Figures = { classified: 1, duplicates: 9, quarantined: 2 };
    const agree = async (): Promise<void> => {
      const seen = stats.length;
      const mqttStats = await until(() => stats.slice(seen).find((s) => s.duplicates === expected.duplicates) ?? (stats.length > seen + 3 ? stats.at(-1) : undefined), 30_000, 'a stats message');
      const status = await statusFigures(dirs.config);
      const metrics = await metricsFigures(http);
      const pick = (f: Figures): Figures => ({ classified: f.classified, duplicates: f.duplicates, quarantined: f.quarantined });
      expect({ status: pick(status), metrics: pick(metrics), mqtt: pick(mqttStats) }).toEqual({ status: expected, metrics: expected, mqtt: expected });
    };
    await agree();

    // The figures are all-time: a restart keeps them, and the three still agree.
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    ({ daemon, http } = await start());
    await agree();
  }, 240_000);

  it('counts and status read a database at an older schema without migrating it', async () => {
    const dir = daemonDirs({}).root;
    const file = path.join(dir, 'old.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    migrate(db, MIGRATIONS.slice(0, 2));
    const now = Date.now();
    const windowStart = Math.floor(now / 60_000) * 60_000;
    db.prepare('INSERT INTO counts (window_ms, window_start, window_end, label, count) VALUES (60000, ?, ?, ?, ?)').run(windowStart, windowStart + 60_000, 'copepod', 7);
    db.close();
    const config = path.join(dir, 'old.yaml');
    writeFileSync(config, `store:\n  path: ${JSON.stringify(file)}\n  countsWindowS: 60\n`);

    const { stdout } = await run(process.execPath, [CLI, 'counts', '--json', '--since', '10m', '-c', config], { cwd: REPO_ROOT });
    expect(JSON.parse(stdout)).toMatchObject({ total: 7, totals: { copepod: 7 } });
    const status = await statusFigures(config);
    expect(status).toMatchObject({ schemaVersion: 2, classified: 0, duplicates: 0, quarantined: 0 });

    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true }), 'a read command migrated the database').toBe(2);
    expect(after.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'labels'`).get()).toEqual({ n: 0 });
    after.close();
  }, 60_000);
});
