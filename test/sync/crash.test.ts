// The ship killed with kill -9 mid-sync (a child process), then restarted: its outbox resumes
// where it stopped and the shore ends with exactly the ship's records.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../src/sync/fault-proxy.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { shipContent, shoreContent, tmp, until } from './helpers.js';
import { startShore } from './shore-harness.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Child {
  child: ChildProcess;
  last: () => Record<string, unknown> | undefined;
  exited: Promise<string | number>;
}

function startShip(dir: string, url: string, from: number, to: number): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/sync/ship-child.ts'), dir, url, 'cam-k', String(from), String(to)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let last: Record<string, unknown> | undefined;
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) last = JSON.parse(l) as Record<string, unknown>;
  });
  const exited = new Promise<string | number>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code ?? -1)));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, last: () => last, exited };
}

describe('ship killed with kill -9 mid-sync', () => {
  it('resumes after a restart; the shore holds every record once and no gap', async () => {
    const dir = tmp('sync-crash');
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: broker.port, latencyMs: 300, bytesPerSecond: 8000 });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const shore = await startShore(dir, broker.url);
    cleanups.push(() => shore.stop());

    const first = startShip(dir, proxy.url, 0, 600);
    await until(() => Number(first.last()?.acked ?? 0) >= 100 || undefined, 60_000, 'the first 100 acknowledged records');
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const before = shipContent(path.join(dir, 'ship.db'));
    expect(before.predictions.length).toBeLessThanOrEqual(600);

    // The restarted ship stores the rest (what it had stored is skipped) and drains.
    const second = startShip(dir, proxy.url, 0, 600);
    await until(() => second.last()?.event === 'status' && second.last()?.queued === 0 && Number(second.last()?.shoreThrough) === shipContent(path.join(dir, 'ship.db')).lastSeq || undefined, 120_000, 'the restarted ship to drain');
    second.child.kill('SIGTERM');
    await second.exited;

    const ours = shipContent(path.join(dir, 'ship.db'));
    const theirs = shoreContent(shore.dbPath, 'cam-k');
    expect(ours.predictions).toHaveLength(600);
    expect(theirs.predictions).toEqual(ours.predictions);
    expect(theirs.counts).toEqual(ours.counts);
    expect(theirs.records).toBe(ours.lastSeq);
    expect((await shore.store.gaps('cam-k')).missing).toEqual([]);
  }, 180_000);
});
