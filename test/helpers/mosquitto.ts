// A real Mosquitto broker on its own port, started by the test (installed by .ci/run).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export function mosquittoPath(): string | undefined {
  for (const candidate of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']) {
    if (spawnSync(candidate, ['-h']).error === undefined) return candidate;
  }
  return undefined;
}

export interface Mosquitto {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Kill at once (no clean shutdown), for outage tests. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export async function startMosquitto(port: number): Promise<Mosquitto> {
  const binary = mosquittoPath();
  if (!binary) throw new Error('mosquitto is not installed (apt-get install mosquitto; .ci/run does it)');
  const dir = mkdtempSync(path.join(tmpdir(), 'pw-mosquitto-'));
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence true', `persistence_location ${dir}/`, 'log_dest stderr', 'log_type error', ''].join('\n'),
  );
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(binary, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForPort(port, 10_000);
  };
  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  await start();
  return { port, url: `mqtt://127.0.0.1:${port}`, start, stop: () => stopWith('SIGTERM'), kill: () => stopWith('SIGKILL') };
}

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
