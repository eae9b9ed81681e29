// Publisher against a real in-process aedes broker and a real MQTT.js subscriber.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { EmbeddedBroker } from '../../src/publish/embedded-broker.js';
import { Publisher, type PublisherOptions } from '../../src/publish/publisher.js';
import type { CountsPayload, ModelInfo } from '../../src/publish/types.js';
import { MemoryProviders, Proxy, Recorder, freePort, waitFor } from './helpers.js';

const T = 'plankwatch/isiis1';
const START = Date.UTC(2024, 5, 1, 12, 0, 0);
const MODEL: ModelInfo = {
  ensembleVersion: 'e-2024-06-01',
  voting: 'mean',
  members: [{ name: 'cnn96', version: 'v3', inputSize: 96, tta: ['identity'], metrics: { accuracy: 0.81 } }],
  backend: 'wasm',
  sinceMs: START,
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

// The publisher proves itself to the embedded broker with this login; nobody else may publish there.
const OWNER = { clientId: 'plankwatch-isiis1', prefix: 'plankwatch', instrument: 'isiis1', password: 'test-owner-secret' };
const LOGIN = { clientId: OWNER.clientId, username: OWNER.clientId, password: OWNER.password };

async function broker(port = 0, owner = OWNER): Promise<EmbeddedBroker> {
  const b = new EmbeddedBroker({ port, owner, logger: silentLogger() });
  await b.start();
  cleanups.push(() => b.stop());
  return b;
}

async function subscriber(url: string): Promise<Recorder> {
  const r = await Recorder.subscribe(url, `${T}/#`);
  cleanups.push(() => r.close());
  return r;
}

async function publisher(url: string, providers: MemoryProviders, extra: Partial<PublisherOptions> = {}): Promise<Publisher> {
  const p = new Publisher({
    mqtt: { url, ...LOGIN, reconnectPeriodMs: 50, reconnectMaxMs: 200, publishTimeoutMs: 1000 },
    instrument: 'isiis1',
    countsMinIntervalMs: 50,
    statsIntervalMs: 60_000,
    providers,
    logger: silentLogger(),
    ...extra,
  });
  await p.start();
  cleanups.push(() => p.stop());
  return p;
}

function windowAt(i: number, counts: Record<string, number>) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return { startMs: START + i * 60_000, endMs: START + (i + 1) * 60_000, total, counts, ensembleVersion: MODEL.ensembleVersion };
}

const counts = (r: Recorder) => r.on(`${T}/counts`).map((m) => JSON.parse(m.payload) as CountsPayload);

describe('Publisher', () => {
  it('publishes availability online (retained) and offline on a clean stop', async () => {
    const b = await broker();
    const p = new Publisher({ mqtt: { url: b.url, ...LOGIN }, instrument: 'isiis1', providers: new MemoryProviders(), logger: silentLogger() });
    await p.start();
    await waitFor(() => p.connected, 5000, 'connect');
    // A subscriber arriving later still sees the retained state.
    const late = await subscriber(b.url);
    const online = await waitFor(() => late.last(`${T}/availability`), 5000, 'online');
    expect(online).toEqual({ topic: `${T}/availability`, payload: 'online', retain: true });
    await p.stop();
    await waitFor(() => late.last(`${T}/availability`)?.payload === 'offline', 5000, 'offline');
    const after = await subscriber(b.url);
    const retained = await waitFor(() => after.last(`${T}/availability`), 5000, 'retained offline');
    expect(retained).toEqual({ topic: `${T}/availability`, payload: 'offline', retain: true });
  });

  it('leaves the last will offline when the connection dies abruptly, then comes back online', async () => {
    const b = await broker();
    const proxy = new Proxy(b.port);
    const proxyPort = await proxy.start();
    cleanups.push(() => proxy.stop());
    const r = await subscriber(b.url);
    const p = await publisher(`mqtt://127.0.0.1:${proxyPort}`, new MemoryProviders());
    await waitFor(() => r.last(`${T}/availability`)?.payload === 'online', 5000, 'online');
    r.clear();
    proxy.cut();
    await waitFor(() => r.on(`${T}/availability`).some((m) => m.payload === 'offline'), 5000, 'last will');
    await waitFor(() => r.last(`${T}/availability`)?.payload === 'online', 5000, 'online again');
    expect(r.on(`${T}/availability`).map((m) => m.payload)).toEqual(['offline', 'online']);
    expect(p.connected).toBe(true);
  });

  it('publishes absolute window counts with seq, window times and final flag', async () => {
    const b = await broker();
    const r = await subscriber(b.url);
    const providers = new MemoryProviders();
    providers.model = MODEL;
    const p = await publisher(b.url, providers);
    await waitFor(() => r.last(`${T}/availability`), 5000, 'online');
    providers.current = windowAt(0, { copepod: 3, diatom: 1 });
    p.notifyCounts();
    const first = await waitFor(() => counts(r).at(-1), 5000, 'counts');
    expect(first).toEqual({
      instrument: 'isiis1',
      window: {
        start: '2024-06-01T12:00:00.000Z',
        end: '2024-06-01T12:01:00.000Z',
        startMs: START,
        endMs: START + 60_000,
      },
      seq: first.seq,
      total: 4,
      counts: { copepod: 3, diatom: 1 },
      final: false,
      ensembleVersion: 'e-2024-06-01',
    });
    expect(r.last(`${T}/counts`)?.retain).toBe(false); // live delivery; retained copies arrive with retain=true
    // The window closes: its final message, then the new open window (so that one stays retained).
    providers.closed.push(windowAt(0, { copepod: 5, diatom: 1 }));
    providers.current = windowAt(1, { copepod: 1 });
    p.notifyWindowClosed();
    await waitFor(() => counts(r).length >= 3, 5000, 'final + new window');
    const [, final, next] = counts(r);
    expect(final).toMatchObject({ final: true, total: 6, counts: { copepod: 5, diatom: 1 }, window: { startMs: START } });
    expect(next).toMatchObject({ final: false, total: 1, window: { startMs: START + 60_000 } });
    expect(providers.published).toEqual([START]);
    const seqs = counts(r).map((c) => c.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
    const model = JSON.parse(r.last(`${T}/model`)!.payload);
    expect(model).toEqual({
      ensembleVersion: 'e-2024-06-01',
      voting: 'mean',
      members: [{ name: 'cnn96', version: 'v3', inputSize: 96, tta: ['identity'], metrics: { accuracy: 0.81 } }],
      backend: 'wasm',
      since: '2024-06-01T12:00:00.000Z',
    });
  });

  it('throttles counts to one message per countsMinIntervalMs', async () => {
    const b = await broker();
    const r = await subscriber(b.url);
    const providers = new MemoryProviders();
    const p = await publisher(b.url, providers, { countsMinIntervalMs: 300 });
    await waitFor(() => r.last(`${T}/availability`), 5000, 'online');
    await new Promise((res) => setTimeout(res, 350));
    for (let i = 1; i <= 20; i++) {
      providers.current = windowAt(0, { copepod: i });
      p.notifyCounts();
      await new Promise((res) => setTimeout(res, 10));
    }
    await waitFor(() => counts(r).at(-1)?.total === 20, 5000, 'latest counts');
    expect(counts(r).length).toBeLessThanOrEqual(3);
  });

  it('publishes stats (not retained) and detections only when enabled', async () => {
    const b = await broker();
    const r = await subscriber(b.url);
    const providers = new MemoryProviders();
    const p = await publisher(b.url, providers, { statsIntervalMs: 200, detections: true });
    await waitFor(() => r.last(`${T}/availability`), 5000, 'online');
    providers.stats = { framesSeen: 50, classified: 40, duplicates: 2, quarantined: 1, queueDepth: 7, backend: 'wasm' };
    const stats = await waitFor(() => r.last(`${T}/stats`), 5000, 'stats');
    expect(stats.retain).toBe(false);
    const s = JSON.parse(stats.payload);
    expect(Object.keys(s).sort()).toEqual(
      ['backend', 'classified', 'duplicates', 'framesSeen', 'queueDepth', 'quarantined', 'roisPerSecond', 'uptimeS'].sort(),
    );
    expect(s).toMatchObject({ framesSeen: 50, classified: 40, duplicates: 2, quarantined: 1, queueDepth: 7, backend: 'wasm' });
    expect(s.roisPerSecond).toBeGreaterThan(0);
    p.publishDetection({ sha256: 'ab'.repeat(32), file: 'a/b.jpg', label: 'copepod', probability: 0.9, atMs: START });
    const d = await waitFor(() => r.last(`${T}/detections`), 5000, 'detection');
    expect(JSON.parse(d.payload)).toEqual({ sha256: 'ab'.repeat(32), file: 'a/b.jpg', label: 'copepod', probability: 0.9, at: '2024-06-01T12:00:00.000Z' });

    const otherOwner = { ...OWNER, clientId: 'plankwatch-other', instrument: 'other' };
    const b2 = await broker(0, otherOwner);
    const off = await publisher(b2.url, new MemoryProviders(), {
      instrument: 'other',
      mqtt: { url: b2.url, clientId: otherOwner.clientId, username: otherOwner.clientId, password: otherOwner.password },
    });
    await waitFor(() => off.connected, 5000, 'connect');
    const r2 = await Recorder.subscribe(b2.url, 'plankwatch/other/#');
    cleanups.push(() => r2.close());
    off.publishDetection({ sha256: 'cd'.repeat(32), file: 'x.jpg', label: 'x', probability: 1, atMs: START });
    await new Promise((res) => setTimeout(res, 200));
    expect(r2.on('plankwatch/other/detections')).toEqual([]);
  });

  it('republishes retained topics after the broker restarts on the same port', async () => {
    const port = await freePort();
    let b = new EmbeddedBroker({ port, owner: OWNER, logger: silentLogger() });
    await b.start();
    const providers = new MemoryProviders();
    providers.model = MODEL;
    providers.current = windowAt(0, { copepod: 2 });
    const p = await publisher(b.url, providers);
    const r = await Recorder.subscribe(b.url, `${T}/#`);
    await waitFor(() => r.last(`${T}/counts`), 5000, 'counts');
    await r.close();
    await b.stop();
    await waitFor(() => !p.connected, 5000, 'disconnect');

    providers.current = windowAt(0, { copepod: 9 }); // changed while the broker was away
    p.notifyCounts();
    b = new EmbeddedBroker({ port, owner: OWNER, logger: silentLogger() }); // a fresh broker: no retained messages
    await b.start();
    cleanups.push(() => b.stop());
    await waitFor(() => p.connected, 5000, 'reconnect');
    const r2 = await subscriber(b.url);
    await waitFor(() => r2.last(`${T}/counts`) && r2.last(`${T}/model`) && r2.last(`${T}/availability`), 5000, 'retained');
    expect(r2.last(`${T}/availability`)).toMatchObject({ payload: 'online', retain: true });
    expect(r2.last(`${T}/model`)?.retain).toBe(true);
    const c = r2.last(`${T}/counts`)!;
    expect(c.retain).toBe(true);
    expect(JSON.parse(c.payload)).toMatchObject({ total: 9, counts: { copepod: 9 }, final: false });
  });

  it('keeps going while the broker is down, logs PW_E_MQTT once, and catches up when it appears', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()));
        cb();
      },
    });
    const logger = pino({ level: 'info' }, sink).child({ module: 'publish' });
    const port = await freePort();
    const providers = new MemoryProviders();
    providers.model = MODEL;
    const p = await publisher(`mqtt://user:s3cret@127.0.0.1:${port}`, providers, { logger });
    // The pipeline keeps calling in; nothing throws, nothing is queued.
    for (let i = 0; i < 5; i++) {
      providers.current = windowAt(1, { copepod: i + 1 });
      p.notifyCounts();
      p.notifyModel();
      p.publishDetection({ sha256: 'ef'.repeat(32), file: 'y.jpg', label: 'y', probability: 1, atMs: START });
    }
    providers.closed.push(windowAt(0, { diatom: 4 }));
    await new Promise((res) => setTimeout(res, 600)); // several reconnect attempts
    const outage = lines.filter((l) => l.code === 'PW_E_MQTT');
    expect(outage).toHaveLength(1);
    expect(outage[0]!.url).toBe(`mqtt://user:***@127.0.0.1:${port}`);
    expect(JSON.stringify(lines)).not.toContain('s3cret');
    expect(providers.seq).toBe(0);

    const b = await broker(port, { ...OWNER, password: 's3cret' }); // the password in the URL wins over LOGIN's
    await waitFor(() => p.connected, 5000, 'connect');
    const r = await subscriber(b.url);
    await waitFor(() => r.last(`${T}/counts`) && r.last(`${T}/model`), 5000, 'retained state');
    expect(JSON.parse(r.last(`${T}/counts`)!.payload)).toMatchObject({ window: { startMs: START + 60_000 }, total: 5, final: false });
    expect(providers.published).toEqual([START]);
    expect(lines.filter((l) => l.code === 'PW_E_MQTT')).toHaveLength(1);
    // A second outage is a second log line.
    await r.close();
    await b.stop();
    await waitFor(() => lines.filter((l) => l.code === 'PW_E_MQTT').length === 2, 5000, 'second outage logged');
  });

  it('survives providers that throw and data that cannot be serialised', async () => {
    const b = await broker();
    const r = await subscriber(b.url);
    const providers = new MemoryProviders();
    let broken = true;
    providers.getCurrentCounts = () => {
      if (broken) throw new Error('database is locked');
      return windowAt(0, { copepod: 1 });
    };
    providers.getModelInfo = () => {
      throw new Error('no ensemble');
    };
    const p = await publisher(b.url, providers, { detections: true, statsIntervalMs: 100 });
    await waitFor(() => r.last(`${T}/availability`), 5000, 'online');
    expect(() => p.publishDetection({ sha256: 'x', file: 'x', label: 'x', probability: 1, atMs: Number.NaN })).not.toThrow();
    expect(() => p.notifyModel()).not.toThrow();
    p.notifyCounts();
    await new Promise((res) => setTimeout(res, 200));
    broken = false;
    p.notifyCounts();
    await waitFor(() => counts(r).at(-1)?.total === 1, 5000, 'counts after recovery');
    await waitFor(() => r.last(`${T}/stats`), 5000, 'stats keep coming');
  });
});
