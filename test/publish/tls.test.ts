// mqtts:// with a CA file and credentials, against aedes behind a real TLS server.
// Certificates are made with the openssl command line at test time.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlankwatchError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { Publisher } from '../../src/publish/publisher.js';
import { MemoryProviders, Recorder, waitFor } from './helpers.js';

let dir: string;
let aedes: Aedes;
let server: Server;
let port: number;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pw-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-ca');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
  openssl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.pem', '-days', '1', '-subj', '/CN=other-ca');
  aedes = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => done(null, username === 'ship' && password?.toString() === 'pw'),
  });
  server = createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) }, aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => aedes.close(() => resolve()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

function publisher(caFile: string, password: string): Publisher {
  return new Publisher({
    mqtt: { url: `mqtts://127.0.0.1:${port}`, username: 'ship', password, caFile: join(dir, caFile), reconnectPeriodMs: 50 },
    instrument: 'isiis1',
    providers: new MemoryProviders(),
    logger: silentLogger(),
  });
}

describe('Publisher over mqtts://', () => {
  it('connects with the CA file and credentials and publishes', async () => {
    const sub = await Recorder.subscribe(`mqtts://127.0.0.1:${port}`, 'plankwatch/isiis1/#', {
      username: 'ship', password: 'pw', ca: readFileSync(join(dir, 'ca.pem')),
    });
    const p = publisher('ca.pem', 'pw');
    await p.start();
    try {
      await waitFor(() => sub.last('plankwatch/isiis1/availability')?.payload === 'online', 5000, 'online over TLS');
    } finally {
      await p.stop();
      await sub.close();
    }
  });

  it('stays disconnected (without throwing) with the wrong CA or a wrong password', async () => {
    for (const p of [publisher('other.pem', 'pw'), publisher('ca.pem', 'nope')]) {
      await p.start();
      await new Promise((res) => setTimeout(res, 300));
      expect(p.connected).toBe(false);
      await p.stop();
    }
  });

  it('refuses to start with an unreadable CA file or a non-MQTT URL', async () => {
    const missing = publisher('missing.pem', 'pw');
    const e1 = await missing.start().then(() => null, (e: unknown) => e);
    expect((e1 as PlankwatchError).code).toBe('PW_E_CONFIG_INVALID');
    const http = new Publisher({ mqtt: { url: 'http://127.0.0.1:1' }, instrument: 'i', providers: new MemoryProviders(), logger: silentLogger() });
    const e2 = await http.start().then(() => null, (e: unknown) => e);
    expect((e2 as PlankwatchError).code).toBe('PW_E_CONFIG_INVALID');
  });
});
