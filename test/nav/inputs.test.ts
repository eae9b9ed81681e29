// The serial and file inputs through real devices and files: a pseudo-terminal pair stands in for
// the RS-232 line (made by Python's pty module: the serialport package opens the slave end as it
// would a USB adapter), and a log file that grows, is truncated and is replaced.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withChecksum } from '../../src/nav/index.js';
import { rig, until, type Rig } from './helpers.js';

const PY = spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;
const rmc = (hms: string, lon: string) => withChecksum(`GPRMC,${hms},A,4807.038,N,${lon},E,3.0,90.0,071226,,,A`);

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

describe('nav inputs', () => {
  it('follows a logged file across growth, truncation and replacement (log rotation)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-nav-file-'));
    const path = join(dir, 'nav.log');
    writeFileSync(path, `${rmc('120000', '01131.000')}\r\n`); // there before the start: not read
    r = rig({ file: { paths: path, fromStart: false }, flushMs: 20 });
    const close = r.close;
    r.close = async () => {
      await close();
      rmSync(dir, { recursive: true, force: true });
    };
    await r.stage.start();
    appendFileSync(path, `${rmc('120001', '01131.100')}\r\n${rmc('120002', '01131')}`); // the last line is not finished yet
    await until(() => (r!.stage.flush(), r!.stage.stats.fixes >= 1), 5_000, 'the appended line');
    appendFileSync(path, '.200,E,3.0,90.0,071226,,,A*00\r\n'); // finished with a wrong checksum
    await until(() => r!.stage.stats.bad >= 1, 5_000, 'the bad line');
    writeFileSync(path, `${rmc('120003', '01131.300')}\r\n`); // truncated and rewritten
    await until(() => (r!.stage.flush(), r!.stage.stats.fixes >= 2), 5_000, 'the line after truncation');
    writeFileSync(`${path}.new`, `${rmc('120004', '01131.400')}\r\n`);
    renameSync(`${path}.new`, path); // replaced
    await until(() => (r!.stage.flush(), r!.stage.stats.fixes >= 3), 5_000, 'the line after rotation');
    const track = r.store.navRepository().track(0, Date.UTC(2030, 0, 1), 10);
    expect(track.map((p) => new Date(p.t).toISOString().slice(11, 19))).toEqual(['12:00:01', '12:00:03', '12:00:04']);
    expect(r.stage.stats.bad).toBe(1);
  });

  it.skipIf(!PY)('reads NMEA from a serial device (a pseudo-terminal), bad lines counted', async () => {
    // Python holds a pty pair, prints the slave's path, and copies its stdin to the master.
    const py = spawn('python3', ['-u', '-c', `
import os, pty, sys
m, s = pty.openpty()
print(os.ttyname(s), flush=True)
while True:
    line = sys.stdin.readline()
    if not line: break
    os.write(m, line.encode())
`], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const device = await new Promise<string>((resolve) => py.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
      r = rig({ serial: { ports: device, baudRate: 4800 }, flushMs: 20 });
      await r.stage.start();
      await until(() => r!.stage.stats.inputs[`serial:${device}`] === true, 10_000, 'the serial port open');
      py.stdin.write(`${rmc('120000', '01131.000')}\r\n$GPGGA,garbage*00\r\n${rmc('120001', '01131.100')}\r\n`);
      await until(() => (r!.stage.flush(), r!.stage.stats.fixes >= 2 && r!.stage.stats.bad >= 1), 10_000, 'two fixes and a bad line from the serial line');
      expect(r.store.navRepository().track(0, Date.UTC(2030, 0, 1), 10)).toHaveLength(2);
    } finally {
      py.kill();
    }
  }, 30_000);
});
