import { afterEach, describe, expect, it } from 'vitest';
import { PlankwatchError } from '../../src/errors.js';
import { checkBearer, isLoopback, requestAllowed } from '../../src/http/auth.js';
import { Metrics } from '../../src/http/metrics.js';
import { HttpServer, type HealthChecks, type HttpServerOptions } from '../../src/http/server.js';
import { silentLogger } from '../../src/log.js';

const servers: HttpServer[] = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.stop();
});

function server(extra: Partial<HttpServerOptions> = {}, checks: () => HealthChecks = () => ({ store: { ok: true } })): HttpServer {
  const s = new HttpServer({ port: 0, health: checks, metrics: new Metrics(), logger: silentLogger(), ...extra });
  servers.push(s);
  return s;
}

describe('HttpServer', () => {
  it('listens on 127.0.0.1 by default and serves /metrics as exposition text', async () => {
    const metrics = new Metrics();
    metrics.framesClassified.inc(3);
    const s = server({ metrics });
    await s.start();
    expect(s.port).toBeGreaterThan(0);
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
    const res = await fetch(`${s.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await res.text()).toContain('\nplankwatch_frames_classified_total 3\n');
  });

  it('answers /health 200 when every check passes and 503 when one fails', async () => {
    let checks: HealthChecks = { store: { ok: true }, mqtt: { ok: true } };
    const s = server({}, () => checks);
    await s.start();
    let res = await fetch(`${s.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', checks });
    checks = { store: { ok: true }, mqtt: { ok: false, detail: 'PW_E_MQTT' } };
    res = await fetch(`${s.url}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'degraded', checks });
  });

  it('answers 503 when the health provider throws', async () => {
    const s = server({}, () => {
      throw new Error('db gone');
    });
    await s.start();
    const res = await fetch(`${s.url}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'degraded' });
  });

  it('mounts routes and plugins added before start, refuses them after', async () => {
    const s = server();
    s.route('GET', '/api/ping', async () => ({ pong: true }));
    s.register(async (app) => {
      app.get('/api/echo/:word', async (req) => ({ word: (req.params as { word: string }).word }));
    });
    await s.start();
    expect(await (await fetch(`${s.url}/api/ping`)).json()).toEqual({ pong: true });
    expect(await (await fetch(`${s.url}/api/echo/hi`)).json()).toEqual({ word: 'hi' });
    expect(() => s.route('GET', '/late', async () => 'x')).toThrow();
  });

  it('requires the bearer token when one is set, except on /health', async () => {
    const s = server({ token: 't0ken' });
    s.route('GET', '/api/ping', async () => ({ pong: true }));
    await s.start();
    expect((await fetch(`${s.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${s.url}/api/ping?x=1`)).status).toBe(401);
    expect((await fetch(`${s.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${s.url}/metrics`, { headers: { authorization: 'Bearer t0ken' } })).status).toBe(200);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('refuses to start on a non-loopback host without a token', async () => {
    const s = server({ host: '0.0.0.0' });
    const err = await s.start().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(PlankwatchError);
    expect((err as PlankwatchError).code).toBe('PW_E_CONFIG_INVALID');
  });

  it('throws PW_E_HTTP_BIND when the port is taken', async () => {
    const first = server();
    await first.start();
    const second = server({ port: first.port });
    const err = await second.start().then(() => null, (e: unknown) => e);
    expect((err as PlankwatchError).code).toBe('PW_E_HTTP_BIND');
  });
});

describe('auth', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.5', 'ship.local', '128.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });

  it('checks bearer tokens exactly', () => {
    expect(checkBearer('Bearer abc', 'abc')).toBe(true);
    expect(checkBearer('bearer abc', 'abc')).toBe(true);
    expect(checkBearer('Bearer abcd', 'abc')).toBe(false);
    expect(checkBearer('Basic abc', 'abc')).toBe(false);
    expect(checkBearer(undefined, 'abc')).toBe(false);
  });

  it('lets /health through without a token and everything through without a configured token', () => {
    expect(requestAllowed('abc', '/health', undefined)).toBe(true);
    expect(requestAllowed('abc', '/metrics', undefined)).toBe(false);
    expect(requestAllowed('abc', '/metrics', 'Bearer abc')).toBe(true);
    expect(requestAllowed(undefined, '/metrics', undefined)).toBe(true);
  });
});
