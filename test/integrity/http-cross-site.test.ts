// Cross-site requests, DNS rebinding and token guessing against the real daemon (a child process on
// a tiny test ensemble, real NDSB images, its real SQLite file), over real HTTP. The requests are
// what a web page open on the ship's machine can make its browser send: a form post or a
// `fetch(..., { mode: 'no-cors' })` to 127.0.0.1, with the browser's own Origin header, or any
// request at all after rebinding its own name to 127.0.0.1 (the Host header then names it).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { daemonDirs, startDaemon, until, type DaemonDirs, type DaemonProcess } from '../helpers/daemon.js';
import { fixtureImages } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';

const CLASSES = ['acantharia_protist', 'chaetognath_other', 'detritus_other', 'protist_other'];
const EVIL = 'http://evil.example';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** One request with exactly these headers (node:http sends Host as given, as a browser would after rebinding). */
function send(base: string, method: string, urlPath: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const url = new URL(urlPath, base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function count(dbFile: string, sql: string): number {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

let modelsDir = '';
let ensemble = '';
beforeAll(async () => {
  modelsDir = await tempModelsDir();
  cleanups.push(() => removeDir(modelsDir));
  await saveTinyMember(modelsDir, { name: 'tiny-a', version: 'v1', classes: CLASSES, size: 32, seed: 5 });
  ensemble = await writeEnsemble(modelsDir, { version: 'xsite-1', voting: 'soft', members: [{ name: 'tiny-a', version: 'v1' }] });
}, 60_000);

async function daemon(overrides: Record<string, Record<string, unknown>> = {}): Promise<{ dirs: DaemonDirs; d: DaemonProcess; base: string }> {
  const dirs = daemonDirs({
    classify: { ensemble, modelsDir, workers: 1 },
    publish: { embeddedPort: await freePort() },
    finetune: { enabled: false },
    ...overrides,
  });
  cleanups.push(() => removeDir(dirs.root));
  const d = startDaemon(dirs.config);
  cleanups.push(async () => {
    if (d.child.exitCode === null) {
      d.child.kill('SIGTERM');
      await d.exited;
    }
  });
  const ready = await d.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
  return { dirs, d, base: ready.http as string };
}

describe('the HTTP server on its default loopback bind refuses what other sites make a browser send', () => {
  let base = '';
  let dirs: DaemonDirs;
  let sha = '';
  let sha2 = '';
  let host = '';

  beforeAll(async () => {
    ({ base, dirs } = await daemon());
    host = new URL(base).host;
    const images = fixtureImages().slice(0, 3);
    for (const img of images) writeFileSync(path.join(dirs.incoming, `${img.label}-${img.name}`), img.bytes);
    await until(() => {
      try {
        return count(dirs.db, 'SELECT count(*) AS n FROM predictions') >= images.length || undefined;
      } catch {
        return undefined;
      }
    }, 120_000, `${images.length} predictions`);
    sha = images[0]!.sha256;
    sha2 = images[1]!.sha256;
  }, 240_000);

  const labelRows = () => count(dirs.db, 'SELECT count(*) AS n FROM label_events');

  it('(a) a form-encoded cross-origin label post writes nothing', async () => {
    const form = `sha256=${sha}&action=correct&label=detritus_other&user=attacker`;
    const a = await send(base, 'POST', '/api/labels', { host, origin: EVIL, 'content-type': 'application/x-www-form-urlencoded' }, form);
    expect(a.status).toBe(403);
    expect(a.json.error.code).toBe('PW_E_HTTP_ORIGIN');
    // The same without Origin (an old browser, or a privacy setting) still is not JSON.
    const b = await send(base, 'POST', '/api/labels', { host, 'content-type': 'application/x-www-form-urlencoded' }, form);
    expect(b.status).toBe(415);
    expect(b.json.error.code).toBe('PW_E_HTTP_CONTENT_TYPE');
    // JSON sent as text/plain (what a no-cors fetch may send without asking first).
    const body = JSON.stringify({ sha256: sha, action: 'correct', label: 'detritus_other', user: 'attacker' });
    expect((await send(base, 'POST', '/api/labels', { host, 'content-type': 'text/plain' }, body)).status).toBe(415);
    expect((await send(base, 'POST', '/api/labels/bulk', { host, 'content-type': 'text/plain' }, JSON.stringify({ user: 'attacker', items: [{ sha256: sha, action: 'dubious' }] }))).status).toBe(415);
    expect(labelRows()).toBe(0);
  });

  it('(b) a JSON post with a foreign Origin or Referer is refused; the page\'s own origin is not', async () => {
    const body = JSON.stringify({ sha256: sha, action: 'correct', label: 'detritus_other', user: 'attacker' });
    const json = { host, 'content-type': 'application/json' };
    const a = await send(base, 'POST', '/api/labels', { ...json, origin: EVIL }, body);
    expect(a.status).toBe(403);
    expect(a.json.error.code).toBe('PW_E_HTTP_ORIGIN');
    expect(a.json.error.message).toContain('http.allowedHosts');
    expect((await send(base, 'POST', '/api/labels', { ...json, origin: 'null' }, body)).status).toBe(403);
    expect((await send(base, 'POST', '/api/labels', { ...json, referer: `${EVIL}/page.html` }, body)).status).toBe(403);
    // Same port, other name of this machine: a different origin, still one of ours.
    expect((await send(base, 'POST', '/api/labels', { ...json, origin: `http://localhost:${new URL(base).port}` }, JSON.stringify({ sha256: sha, action: 'dubious', user: 'ana' }))).status).toBe(200);
    // Another port on this machine is another program's page.
    expect((await send(base, 'POST', '/api/labels', { ...json, origin: 'http://127.0.0.1:1' }, body)).status).toBe(403);
    const ok = await send(base, 'POST', '/api/labels', { ...json, origin: base, referer: `${base}/review` }, JSON.stringify({ sha256: sha2, action: 'dubious', user: 'ana' }));
    expect(ok.status, ok.text).toBe(200);
    const db = new Database(dirs.db, { readonly: true, fileMustExist: true });
    try {
      const users = (db.prepare('SELECT user FROM label_events ORDER BY id').all() as { user: string }[]).map((r) => r.user);
      expect(users).toEqual(['ana', 'ana']);
    } finally {
      db.close();
    }
  });

  it('(c) POST /api/finetune/run from another site, or without JSON, starts nothing', async () => {
    const runs = () => count(dirs.db, 'SELECT count(*) AS n FROM finetune_runs');
    const before = runs();
    for (const headers of [
      { host, origin: EVIL },
      { host, origin: EVIL, 'content-type': 'application/json' },
      { host, origin: EVIL, 'content-type': 'application/x-www-form-urlencoded' },
      { host }, // no content type at all: a bare no-cors fetch
      { host, 'content-type': 'text/plain' },
    ]) {
      const a = await send(base, 'POST', '/api/finetune/run', headers, headers['content-type'] === undefined ? undefined : '');
      expect(a.status, JSON.stringify(headers)).not.toBe(202);
      expect([403, 415], JSON.stringify(headers)).toContain(a.status);
      expect(a.json.error.code).toMatch(/^PW_E_HTTP_(ORIGIN|CONTENT_TYPE)$/);
    }
    expect(runs()).toBe(before);
  });

  it('(d) a Host header that is not one of this server\'s names is refused on every route', async () => {
    for (const p of ['/review', '/api/classes', '/api/review/queue', '/metrics', '/health']) {
      const a = await send(base, 'GET', p, { host: 'evil.example' });
      expect(a.status, p).toBe(421);
      expect(a.json.error.code).toBe('PW_E_HTTP_HOST');
    }
    expect((await send(base, 'GET', '/api/classes', { host: `evil.example:${new URL(base).port}` })).status).toBe(421);
    expect((await send(base, 'POST', '/api/labels', { host: 'evil.example', 'content-type': 'application/json' }, JSON.stringify({ sha256: sha, action: 'dubious', user: 'attacker' }))).status).toBe(421);
    expect(labelRows()).toBe(2);
    // This machine's own names, with the bound port, are served.
    for (const h of [host, `localhost:${new URL(base).port}`, `LOCALHOST:${new URL(base).port}`]) {
      expect((await send(base, 'GET', '/api/classes', { host: h })).status, h).toBe(200);
    }
    expect((await send(base, 'GET', '/api/classes', { host: 'localhost' })).status).toBe(421);
  });
});

describe('wrong tokens are throttled per address', () => {
  it('(e) after a few wrong logins, 429 with Retry-After; the right token is refused until the lockout ends, then accepted', async () => {
    const token = 'ship-token-7f3a';
    const secrets = mkdtempSync(path.join(tmpdir(), 'pw-token-'));
    cleanups.push(() => removeDir(secrets));
    const tokenFile = path.join(secrets, 'token');
    writeFileSync(tokenFile, `${token}\n`);
    // Still bound to 127.0.0.1: the token is optional there, and then guards every route.
    const { base, d } = await daemon({ http: { port: 0, tokenFile } });
    const host = new URL(base).host;
    const form = { host, 'content-type': 'application/x-www-form-urlencoded' };
    const statuses: number[] = [];
    let last: Answer | undefined;
    for (let i = 0; i < 5; i++) {
      last = await send(base, 'POST', '/review/login', form, `token=wrong-${i}`);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    // Right after the fifth: the right token is not even checked.
    const locked = await send(base, 'POST', '/review/login', form, `token=${token}`);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(locked.headers['set-cookie']).toBeUndefined();
    // The bearer header is the same secret: locked out too.
    expect((await send(base, 'GET', '/api/classes', { host, authorization: `Bearer ${token}` })).status).toBe(429);
    // 24 more wrong tries: none is answered 200, most 429; the lockout only grows.
    for (let i = 0; i < 24; i++) {
      last = await send(base, 'POST', '/review/login', form, `token=again-${i}`);
      statuses.push(last.status);
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    expect(d.logs.some((l) => l.code === 'PW_E_HTTP_AUTH_LOCKED')).toBe(true);
    expect(d.logs.filter((l) => l.code === 'PW_E_REVIEW_AUTH').length).toBeGreaterThanOrEqual(5);
    // Once the lockout has passed, the right token logs in and the count starts again.
    let wait = Number(last!.headers['retry-after'] ?? 1);
    let ok: Answer;
    for (;;) {
      await new Promise((r) => setTimeout(r, wait * 1000 + 100));
      ok = await send(base, 'POST', '/review/login', form, `token=${token}`);
      if (ok.status !== 429) break;
      wait = Number(ok.headers['retry-after']);
    }
    expect(ok.status).toBe(303);
    expect(String(ok.headers['set-cookie'])).toMatch(/pw_review_session=/);
    expect((await send(base, 'POST', '/review/login', form, 'token=typo')).status).toBe(401);
    expect((await send(base, 'GET', '/api/classes', { host, authorization: `Bearer ${token}` })).status).toBe(200);
  }, 240_000);
});
