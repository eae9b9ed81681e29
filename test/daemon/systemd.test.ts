// systemd integration: READY once the daemon can take files, WATCHDOG pings only while the
// pipeline makes progress, STOPPING on SIGTERM.
import { afterEach, describe, expect, it } from 'vitest';
import { ProgressWatchdog } from '../../src/daemon/watchdog.js';
import { silentLogger } from '../../src/log.js';
import { daemonDirs, startDaemon, until, type DaemonProcess } from '../helpers/daemon.js';
import { notifySocket, type NotifySocket } from '../helpers/notify-socket.js';
import { freePort } from '../helpers/ports.js';

const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

describe('progress watchdog', () => {
  it('pings while idle or progressing, and withholds the ping when files wait but none settles', async () => {
    let progress = 0;
    let busy = false;
    let pings = 0;
    const wd = new ProgressWatchdog({ intervalMs: 1e9, progress: () => progress, busy: () => busy, ping: async () => void pings++, logger: silentLogger() });
    wd.start();
    wd.stop();
    expect(pings).toBe(1);
    expect(await wd.tick()).toBe(true); // idle
    busy = true;
    progress = 5;
    expect(await wd.tick()).toBe(true); // busy and moving
    expect(await wd.tick()).toBe(false); // busy and stuck
    expect(await wd.tick()).toBe(false);
    progress = 6;
    expect(await wd.tick()).toBe(true); // moving again
    busy = false;
    expect(await wd.tick()).toBe(true); // idle
    expect(pings).toBe(5);
  });
});

describe('daemon under systemd (Type=notify)', () => {
  it('sends READY=1 with a status, WATCHDOG=1 pings, and STOPPING=1 on SIGTERM', async () => {
    const sock: NotifySocket = await notifySocket();
    open.push(sock);
    const dirs = daemonDirs({ publish: { embeddedPort: await freePort() } });
    const daemon: DaemonProcess = startDaemon(dirs.config, { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '1000000' });
    open.push({ close: () => daemon.child.exitCode === null && daemon.child.kill('SIGKILL') });
    await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    await until(() => sock.messages.some((m) => m.includes('READY=1')) || undefined, 10_000, 'READY=1');
    const ready = sock.messages.find((m) => m.includes('READY=1'))!;
    expect(ready).toContain('STATUS=classifying');
    await until(() => sock.messages.filter((m) => m.includes('WATCHDOG=1')).length >= 3 || undefined, 10_000, 'three watchdog pings');
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    await until(() => sock.messages.some((m) => m.includes('STOPPING=1')) || undefined, 5_000, 'STOPPING=1');
  }, 120_000);
});
