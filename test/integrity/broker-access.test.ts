// The embedded broker lets nobody in who should not be: the daemon started as a technician starts
// it (child process, embedded aedes broker on loopback), and a separate MQTT.js client as the
// attacker. Only the daemon may write its topics; nobody can take over its client id; $SYS is not
// readable; an oversized packet is cut off before it is buffered; subscriber credentials, when
// configured, are required; a broker bound off loopback without them is refused at config load.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { PlankwatchError } from '../../src/errors.js';
import { daemonDirs, startDaemon, until, type DaemonDirs, type DaemonProcess } from '../helpers/daemon.js';
import { fixtureImages } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';

const T = 'plankwatch/test-cam';
const DAEMON_CLIENT_ID = 'plankwatch-test-cam';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  dirs: DaemonDirs;
  daemon: DaemonProcess;
  url: string;
}

async function startWith(publish: Record<string, unknown>): Promise<Running> {
  const port = await freePort();
  const dirs = daemonDirs({ publish: { embeddedPort: port, ...publish } });
  const daemon = startDaemon(dirs.config);
  await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
  return { dirs, daemon, url: `mqtt://127.0.0.1:${port}` };
}

async function stop(run: Running | undefined): Promise<void> {
  if (run === undefined || run.daemon.child.exitCode !== null) return;
  run.daemon.child.kill('SIGKILL');
  await run.daemon.exited;
}

/** The retained messages a newcomer is served under the daemon's topics (topic -> payload). */
async function retained(url: string, options: IClientOptions = {}): Promise<Map<string, string>> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  const seen = new Map<string, string>();
  client.on('message', (topic, payload, packet) => {
    if (packet.retain) seen.set(topic, payload.toString());
  });
  await client.subscribeAsync(`${T}/#`, { qos: 1 });
  await sleep(500);
  await client.endAsync(true);
  return seen;
}

/** Connects without failing the test: resolves with the client or the connect error. */
async function tryConnect(url: string, options: IClientOptions): Promise<MqttClient | Error> {
  try {
    return await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  } catch (err) {
    return err as Error;
  }
}

/**
 * Connects as `options` says, publishes once (QoS 1) and waits for the broker's acknowledgement,
 * the connection to close, or 5 s. True only when the broker acknowledged the message.
 */
async function attempt(url: string, options: IClientOptions, topic: string, payload: string | Buffer, retain = true): Promise<boolean> {
  const client = await tryConnect(url, options);
  if (client instanceof Error) return false;
  client.on('error', () => undefined);
  const acked = await Promise.race([
    client.publishAsync(topic, payload, { qos: 1, retain }).then(() => true, () => false),
    new Promise<boolean>((r) => client.once('close', () => r(false))),
    sleep(5000).then(() => false),
  ]);
  await client.endAsync(true).catch(() => undefined);
  return acked;
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

describe('embedded broker on loopback without credentials (the default)', () => {
  let run: Running | undefined;
  let model = '';

  beforeAll(async () => {
    run = await startWith({});
    const url = run.url;
    let snapshot = new Map<string, string>();
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      snapshot = await retained(url);
      if (snapshot.get(`${T}/availability`) === 'online' && snapshot.has(`${T}/model`)) break;
    }
    expect(snapshot.get(`${T}/availability`)).toBe('online');
    model = snapshot.get(`${T}/model`)!;
    expect(JSON.parse(model).members.length).toBeGreaterThan(0);
  }, 120_000);

  afterAll(() => stop(run));

  it('refuses anonymous publishes to the daemon topics: the retained values stay the daemon\'s', async () => {
    const url = run!.url;
    expect(await attempt(url, { clientId: 'dashboard-evil' }, `${T}/availability`, 'offline')).toBe(false);
    expect(await attempt(url, { clientId: 'dashboard-evil' }, `${T}/model`, 'not json')).toBe(false);
    expect(await attempt(url, { clientId: 'dashboard-evil', username: 'any', password: 'thing' }, `${T}/counts`, '{"total":-1}')).toBe(false);
    expect(await attempt(url, { clientId: 'dashboard-evil' }, 'elsewhere/notes', 'hello', false)).toBe(false);
    const now = await retained(run!.url);
    expect(now.get(`${T}/availability`)).toBe('online');
    expect(now.get(`${T}/model`)).toBe(model);
    const counts = JSON.parse(now.get(`${T}/counts`) ?? '{}') as { instrument?: string; total?: number };
    expect(counts).toMatchObject({ instrument: 'test-cam', total: 0 }); // the daemon's open window, no image yet
  });

  it('serves nothing under $SYS to an anonymous subscriber', async () => {
    const reader = await mqtt.connectAsync(run!.url, { clientId: 'sys-reader', reconnectPeriod: 0 });
    const topics: string[] = [];
    reader.on('message', (topic) => topics.push(topic));
    // A refused filter is granted 128 (failure), which MQTT.js reports as an error.
    const grantedQos = (filter: string) =>
      reader.subscribeAsync(filter, { qos: 0 }).then(
        (granted) => granted.map((g) => g.qos),
        (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
      );
    expect(await grantedQos('$SYS/#')).toEqual([128]);
    await grantedQos('#');
    // Connecting and disconnecting makes the broker publish $SYS/<id>/new/clients and .../disconnect/clients.
    const other = await mqtt.connectAsync(run!.url, { clientId: 'just-passing', reconnectPeriod: 0 });
    await other.endAsync();
    await sleep(500);
    await reader.endAsync(true);
    expect(topics.filter((t) => t.startsWith('$SYS'))).toEqual([]);
  });

  it('keeps the daemon connected when another client uses its client id', async () => {
    const watcher = await mqtt.connectAsync(run!.url, { clientId: 'availability-watch', reconnectPeriod: 0 });
    const availability: string[] = [];
    watcher.on('message', (topic, payload) => {
      if (topic === `${T}/availability`) availability.push(payload.toString());
    });
    await watcher.subscribeAsync(`${T}/availability`, { qos: 1 });
    await until(() => availability.at(-1) === 'online', 5000, 'retained online');
    availability.length = 0;

    // An impostor that keeps reconnecting with the daemon's id, as the reported one did.
    const impostor = mqtt.connect(run!.url, { clientId: DAEMON_CLIENT_ID, reconnectPeriod: 300, connectTimeout: 2000 });
    let impostorConnects = 0;
    impostor.on('connect', () => (impostorConnects += 1));
    impostor.on('error', () => undefined);
    await sleep(5000);
    await impostor.endAsync(true);
    await watcher.endAsync(true);

    expect(availability).toEqual([]); // no offline/online flapping
    expect(impostorConnects).toBe(0);
    expect((await retained(run!.url)).get(`${T}/availability`)).toBe('online');
  });

  it('serves readers at QoS 0 only, so a persistent session that goes away queues nothing in the daemon', async () => {
    const reader = await mqtt.connectAsync(run!.url, { clientId: 'lazy-reader', clean: false, reconnectPeriod: 0 });
    const qos: number[] = [];
    // Retained messages are sent once, at subscribe time, as published; what would be queued is
    // the live stream, and the daemon publishes counts at QoS 1: an image makes it send them.
    reader.on('message', (topic, _payload, packet) => {
      if (!packet.retain && topic === `${T}/counts`) qos.push(packet.qos);
    });
    await reader.subscribeAsync(`${T}/#`, { qos: 1 });
    const image = fixtureImages()[0]!;
    writeFileSync(path.join(run!.dirs.incoming, 'qos-probe.jpg'), image.bytes);
    await until(() => qos.length >= 1, 20_000, 'live counts after an image');
    await reader.endAsync(true);
    expect(new Set(qos)).toEqual(new Set([0]));
  });

  it('cuts off a 50 MB publish before buffering it', async () => {
    const pid = run!.daemon.child.pid!;
    const before = rssBytes(pid);
    expect(await attempt(run!.url, { clientId: 'big-sender' }, `${T}/junk`, Buffer.alloc(50 * 1024 * 1024, 0x41))).toBe(false);
    await sleep(1500);
    const after = rssBytes(pid);
    expect(after - before).toBeLessThan(20 * 1024 * 1024);
    const now = await retained(run!.url);
    expect(now.has(`${T}/junk`)).toBe(false);
    expect(now.get(`${T}/availability`)).toBe('online');
  });
});

describe('embedded broker with subscriber credentials', () => {
  let run: Running | undefined;
  afterAll(() => stop(run));

  it('refuses anonymous and wrong-password subscribers; the right password reads counts', async () => {
    const dir = daemonDirs({}).root;
    const passwordFile = path.join(dir, 'deck-password');
    writeFileSync(passwordFile, 'krill-4-breakfast\n');
    run = await startWith({ embeddedUsername: 'deck', embeddedPasswordFile: passwordFile });

    const anonymous = await tryConnect(run.url, { clientId: 'anon' });
    expect(anonymous).toBeInstanceOf(Error);
    const wrong = await tryConnect(run.url, { clientId: 'wrong', username: 'deck', password: 'krill' });
    expect(wrong).toBeInstanceOf(Error);

    const reader = await mqtt.connectAsync(run.url, { clientId: 'deck-display', username: 'deck', password: 'krill-4-breakfast', reconnectPeriod: 0 });
    const counts: { total: number }[] = [];
    reader.on('message', (topic, payload) => {
      if (topic === `${T}/counts`) counts.push(JSON.parse(payload.toString()) as { total: number });
    });
    await reader.subscribeAsync(`${T}/#`, { qos: 1 });
    const image = fixtureImages()[0]!;
    writeFileSync(path.join(run.dirs.incoming, image.name), image.bytes);
    await until(() => counts.find((c) => c.total >= 1), 60_000, 'a counts message');
    await reader.endAsync(true);

    // Credentials to read are not credentials to write.
    expect(await attempt(run.url, { clientId: 'deck-display', username: 'deck', password: 'krill-4-breakfast' }, `${T}/availability`, 'offline')).toBe(false);
    const now = await retained(run.url, { username: 'deck', password: 'krill-4-breakfast' });
    expect(now.get(`${T}/availability`)).toBe('online');
  }, 150_000);
});

describe('embedded broker configuration', () => {
  function configFile(text: string): string {
    const file = path.join(daemonDirs({}).root, 'c.yaml');
    writeFileSync(file, text);
    return file;
  }

  it('refuses a non-loopback publish.embeddedHost without subscriber credentials, naming the key', () => {
    let error: unknown;
    try {
      loadConfig({ file: configFile('publish:\n  embeddedHost: 0.0.0.0\n') });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PlankwatchError);
    expect((error as PlankwatchError).code).toBe('PW_E_CONFIG_INVALID');
    expect((error as PlankwatchError).message).toContain('publish.embeddedHost');
    expect((error as PlankwatchError).message).toContain('publish.embeddedPasswordFile');
    // With credentials, or with an external broker (the embedded one is not started), it loads.
    expect(loadConfig({ file: configFile('publish:\n  embeddedHost: 0.0.0.0\n  embeddedUsername: deck\n  embeddedPasswordFile: /run/credentials/deck\n') }).publish.embeddedHost).toBe('0.0.0.0');
    expect(loadConfig({ file: configFile('publish:\n  embeddedHost: 0.0.0.0\n  mqttUrl: mqtt://10.0.0.2:1883\n') }).publish.mqttUrl).toBe('mqtt://10.0.0.2:1883');
    expect(loadConfig({ file: configFile('publish:\n  embeddedHost: ::1\n') }).publish.embeddedHost).toBe('::1');
  });

  it('refuses a user name without a password file and the reverse', () => {
    for (const [text, key] of [
      ['publish:\n  embeddedUsername: deck\n', 'publish.embeddedPasswordFile'],
      ['publish:\n  embeddedPasswordFile: /run/credentials/deck\n', 'publish.embeddedUsername'],
    ] as const) {
      let error: unknown;
      try {
        loadConfig({ file: configFile(text) });
      } catch (err) {
        error = err;
      }
      expect((error as PlankwatchError).code).toBe('PW_E_CONFIG_INVALID');
      expect((error as PlankwatchError).message).toContain(key);
    }
  });
});
