// Sync over TLS to a real Mosquitto: one ship authenticates with a client certificate, another with
// user name and password (both verify the broker against a CA file). Certificates are made with the
// openssl command line at test time.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mosquittoPath, waitForPort } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import type { SyncLinkSettings } from '../../src/sync/sender.js';
import { openShip, shipContent, shoreContent, startSender, tmp, until, type Ship } from './helpers.js';
import { startShore } from './shore-harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function certificates(dir: string): void {
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-ca');
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
  openssl('req', ...ec, '-keyout', 'ship.key', '-out', 'ship.csr', '-subj', '/CN=ship-cert');
  openssl('x509', '-req', '-in', 'ship.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'ship.pem', '-days', '1');
}

describe('sync over TLS', () => {
  it('client certificate, and user name with password; an unknown password is refused', async () => {
    const dir = tmp('sync-tls');
    certificates(dir);
    execFileSync('mosquitto_passwd', ['-c', '-b', path.join(dir, 'passwd'), 'ship-pw', 's3cret']);
    writeFileSync(path.join(dir, 'password'), 's3cret\n');
    const [certPort, pwPort, plainPort] = [await freePort(), await freePort(), await freePort()];
    const tls = [`cafile ${dir}/ca.pem`, `certfile ${dir}/server.pem`, `keyfile ${dir}/server.key`];
    writeFileSync(
      path.join(dir, 'mosquitto.conf'),
      [
        'per_listener_settings true',
        `listener ${certPort} 127.0.0.1`, ...tls, 'require_certificate true', 'use_identity_as_username true', 'allow_anonymous false',
        `listener ${pwPort} 127.0.0.1`, ...tls, `password_file ${dir}/passwd`, 'allow_anonymous false',
        `listener ${plainPort} 127.0.0.1`, 'allow_anonymous true',
        'log_dest stderr', 'log_type error', '',
      ].join('\n'),
    );
    // Started as root, Mosquitto drops to its own user: let it read the files.
    chmodSync(dir, 0o755);
    for (const f of readdirSync(dir)) chmodSync(path.join(dir, f), 0o644);
    const broker: ChildProcess = spawn(mosquittoPath()!, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    cleanups.push(() => void broker.kill('SIGKILL'));
    await waitForPort(plainPort, 10_000);
    const shore = await startShore(dir, `mqtt://127.0.0.1:${plainPort}`);
    cleanups.push(() => shore.stop());

    const byCert = openShip(tmp('ship-cert'), 'cam-cert');
    const byPassword = openShip(tmp('ship-pw'), 'cam-pw');
    for (const s of [byCert, byPassword]) cleanups.push(() => s.close());
    byCert.write(0, 50);
    byPassword.write(0, 50);
    const tlsLink = (ship: Ship, port: number, extra: Partial<SyncLinkSettings>): SyncLinkSettings => ({
      url: `mqtts://127.0.0.1:${port}`,
      clientId: `tls-${ship.instrument}`,
      reconnectPeriodMs: 500,
      caFile: path.join(dir, 'ca.pem'),
      ...extra,
    });
    const s1 = await startSender(byCert, '', { link: tlsLink(byCert, certPort, { certFile: path.join(dir, 'ship.pem'), keyFile: path.join(dir, 'ship.key') }) });
    cleanups.push(() => s1.stop());
    const s2 = await startSender(byPassword, '', { link: tlsLink(byPassword, pwPort, { username: 'ship-pw', password: 's3cret' }) });
    cleanups.push(() => s2.stop());
    for (const [ship, sender] of [[byCert, s1], [byPassword, s2]] as const) {
      const last = shipContent(ship.dbPath).lastSeq;
      await until(() => sender.status().shoreThrough === last || undefined, 30_000, `${ship.instrument} over TLS`);
      expect(shoreContent(shore.dbPath, ship.instrument).predictions).toEqual(shipContent(ship.dbPath).predictions);
    }

    // A wrong password never connects; its records stay queued.
    const intruder = openShip(tmp('ship-bad'), 'cam-bad');
    cleanups.push(() => intruder.close());
    intruder.write(0, 5);
    const s3 = await startSender(intruder, '', { link: tlsLink(intruder, pwPort, { username: 'ship-pw', password: 'wrong' }) });
    cleanups.push(() => s3.stop());
    await new Promise((r) => setTimeout(r, 2000));
    expect(s3.state.connected).toBe(false);
    expect(s3.status().queued.records).toBe(7);
  }, 60_000);
});
