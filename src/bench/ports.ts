// What the services a benchmark or a test starts (daemon HTTP, broker) need: a free TCP port,
// waiting until a service listens on it, and the installed Mosquitto.
import { spawnSync } from 'node:child_process';
import net from 'node:net';

/** The installed Mosquitto broker's path (Debian installs it in /usr/sbin), or undefined. */
export function mosquittoBinary(): string | undefined {
  for (const c of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']) if (spawnSync(c, ['-h']).error === undefined) return c;
  return undefined;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolve once something accepts connections on 127.0.0.1:port; throw after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
