// A real Mosquitto broker on its own port, started by the test (installed by .ci/run).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mosquittoBinary, waitForPort } from '../../src/bench/ports.js';

export { mosquittoBinary as mosquittoPath, waitForPort } from '../../src/bench/ports.js';

export interface Mosquitto {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Kill at once (no clean shutdown), for outage tests. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export async function startMosquitto(port: number): Promise<Mosquitto> {
  const binary = mosquittoBinary();
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
