// The same-origin rules and the wrong-token throttle, piece by piece; over HTTP in
// test/integrity/http-cross-site.test.ts.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { AuthThrottle } from '../../src/http/auth.js';
import { Metrics } from '../../src/http/metrics.js';
import { crossSiteRefusal, HostAllowList, parseAllowedHosts, splitHostPort } from '../../src/http/origin.js';
import { HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log.js';

describe('host allow-list', () => {
  it('parses http.allowedHosts and says what is wrong with an entry', () => {
    expect(parseAllowedHosts('')).toEqual({ hosts: [], errors: [] });
    expect(parseAllowedHosts(' Ship-Lab.local, 192.168.1.20:8080 fd00::5 [fd00::6]:80 ')).toEqual({
      hosts: ['ship-lab.local', '192.168.1.20:8080', '[fd00::5]', '[fd00::6]:80'],
      errors: [],
    });
    const bad = parseAllowedHosts('http://ship.local,ship lab/x,host:99999');
    expect(bad.hosts).toEqual(['ship']);
    expect(bad.errors).toHaveLength(3);
    expect(bad.errors[0]).toMatch(/is a URL/);
    expect(splitHostPort('user@host')).toBeUndefined();
    expect(loadConfig({ env: { PLANKWATCH_HTTP_ALLOWED_HOSTS: 'ship.local, 10.0.0.9:8080' } }).http.allowedHosts).toBe('ship.local, 10.0.0.9:8080');
    expect(() => loadConfig({ env: { PLANKWATCH_HTTP_ALLOWED_HOSTS: 'http://ship.local' } })).toThrow(/http\.allowedHosts: "http:\/\/ship\.local" is a URL/);
    expect(() => loadConfig({ env: { PLANKWATCH_SHORE_HTTP_ALLOWED_HOSTS: 'a b/c' } })).toThrow(/shore\.httpAllowedHosts: "b\/c"/);
  });

  it('answers to loopback names and the bound host with the bound port, and to extras on any port unless given one', () => {
    const list = HostAllowList.forServer('127.0.0.1', 8080, parseAllowedHosts('ship.local, 10.0.0.9:9000').hosts);
    for (const h of ['127.0.0.1:8080', 'localhost:8080', 'LocalHost:8080', '[::1]:8080', 'ship.local', 'ship.local:8080', 'ship.local:443', '10.0.0.9:9000']) {
      expect(list.allowsHost(h), h).toBe(true);
    }
    for (const h of [undefined, '', 'evil.example', 'evil.example:8080', 'localhost', 'localhost:8081', '127.0.0.1:80', '10.0.0.9:8080', 'localhost.:8080', 'ship.local.evil.example']) {
      expect(list.allowsHost(h), String(h)).toBe(false);
    }
    expect(list.allowsUrl('http://localhost:8080')).toBe(true);
    expect(list.allowsUrl('https://ship.local/review')).toBe(true);
    expect(list.allowsUrl('http://evil.example')).toBe(false);
    expect(list.allowsUrl('null')).toBe(false);
    expect(list.allowsUrl('file:///tmp/x.html')).toBe(false);
    expect(HostAllowList.forServer('::1', 80, []).allowsHost('[::1]')).toBe(true);
  });

  it('asks changes for JSON (or the form where a route takes one) and an Origin or Referer of its own', () => {
    const list = HostAllowList.forServer('127.0.0.1', 8080, []);
    const json = { 'content-type': 'application/json; charset=utf-8' };
    expect(crossSiteRefusal(json, list, false)).toBeUndefined();
    expect(crossSiteRefusal({ ...json, origin: 'http://127.0.0.1:8080' }, list, false)).toBeUndefined();
    expect(crossSiteRefusal({ ...json, origin: 'http://evil.example' }, list, false)?.code).toBe('PW_E_HTTP_ORIGIN');
    expect(crossSiteRefusal({ ...json, referer: 'http://evil.example/x' }, list, false)?.code).toBe('PW_E_HTTP_ORIGIN');
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expect(crossSiteRefusal(form, list, false)?.code).toBe('PW_E_HTTP_CONTENT_TYPE');
    expect(crossSiteRefusal({ ...form, origin: 'http://127.0.0.1:8080' }, list, true)).toBeUndefined();
    expect(crossSiteRefusal({ ...form, origin: 'http://evil.example' }, list, true)?.code).toBe('PW_E_HTTP_ORIGIN');
    expect(crossSiteRefusal({ 'content-type': 'text/plain' }, list, true)?.status).toBe(415);
    expect(crossSiteRefusal({}, list, true)?.status).toBe(415);
  });
});

describe('wrong-token throttle', () => {
  it('locks an address out after five wrong tries, doubling to the cap; a right token clears it', () => {
    let now = 0;
    const t = new AuthThrottle({ now: () => now });
    for (let i = 1; i <= 4; i++) expect(t.wrong('10.0.0.1')).toEqual({ failures: i, lockoutMs: 0 });
    expect(t.lockedForMs('10.0.0.1')).toBe(0);
    expect(t.wrong('10.0.0.1')).toEqual({ failures: 5, lockoutMs: 2000 });
    expect(t.lockedForMs('10.0.0.1')).toBe(2000);
    expect(t.lockedForMs('::ffff:10.0.0.1')).toBe(2000);
    expect(t.lockedForMs('10.0.0.2')).toBe(0);
    const waits: number[] = [];
    for (let i = 0; i < 12; i++) {
      now += t.lockedForMs('10.0.0.1');
      waits.push(t.wrong('10.0.0.1').lockoutMs / 1000);
    }
    expect(waits).toEqual([4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]);
    t.right('10.0.0.1');
    expect(t.lockedForMs('10.0.0.1')).toBe(0);
    expect(t.wrong('10.0.0.1').lockoutMs).toBe(0);
  });
});

describe('HttpServer: changes need JSON', () => {
  it('takes a POST with Content-Type: application/json and no body, refuses one without the type', async () => {
    const s = new HttpServer({ port: 0, health: () => ({}), metrics: new Metrics(), logger: silentLogger() });
    s.route('POST', '/api/poke', async (request) => ({ body: request.body ?? null }));
    await s.start();
    try {
      const ok = await fetch(`${s.url}/api/poke`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ body: null });
      const bare = await fetch(`${s.url}/api/poke`, { method: 'POST' });
      expect(bare.status).toBe(415);
      expect(((await bare.json()) as { error: { code: string; message: string } }).error.message).toMatch(/Content-Type: application\/json/);
      const broken = await fetch(`${s.url}/api/poke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
      expect(broken.status).toBe(400);
    } finally {
      await s.stop();
    }
  });
});
