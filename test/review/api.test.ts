// The review JSON API over real HTTP, mounted on the real HttpServer over a real SQLite store.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/http/metrics.js';
import { HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log.js';
import { reviewRoutes } from '../../src/review/routes.js';
import { seedStore, T0, type Seeded } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(options: { token?: string } = {}): Promise<{ s: Seeded; url: string }> {
  const s = seedStore(12);
  cleanups.push(() => s.cleanup());
  const http = new HttpServer({ port: 0, ...(options.token ? { token: options.token } : {}), health: () => ({}), metrics: new Metrics(), logger: silentLogger() });
  http.register(
    reviewRoutes({
      review: s.review,
      counts: s.store,
      countsWindowMs: 60_000,
      images: { watchDir: s.watchDir, archiveDir: s.archiveDir },
      page: { pageSize: 24, enlargedPx: 160, chartHours: 6, chartRefreshS: 30 },
      ...(options.token ? { auth: { token: options.token, sessionMs: 3_600_000 } } : {}),
      logger: silentLogger(),
      now: () => T0 + 600_000,
    }),
  );
  await http.start();
  cleanups.push(() => http.stop());
  return { s, url: http.url };
}

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function get(url: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url);
  return { status: res.status, json: await res.json() };
}

describe('review API', () => {
  it('serves the queue with filters, a frame, its image from the archive or the watch folder, and 404s', async () => {
    const { s, url } = await serve();
    const q = await get(`${url}/api/review/queue?limit=5`);
    expect(q.status).toBe(200);
    expect(q.json).toMatchObject({ total: 12, limit: 5, offset: 0, totalCapped: false });
    expect(q.json.items[0]).toMatchObject({ sha256: expect.any(String), relPath: expect.any(String), prediction: { topK: expect.any(Array) }, state: { status: 'predicted' } });
    expect((await get(`${url}/api/review/queue?label=detritus&since=${new Date(T0).toISOString()}&until=${T0 + 6000}`)).json.total).toBe(2);
    expect((await get(`${url}/api/review/queue?since=1h`)).json.total).toBe(12); // durations count back from now

    const frame = await get(`${url}/api/frames/${s.shas[0]}`);
    expect(frame.json).toMatchObject({ sha256: s.shas[0], members: [{ member: 'm1', version: 'v1' }], sources: [{ role: 'original' }] });
    for (const i of [0, 11]) {
      // 0 lies in the archive, 11 in the watch folder.
      const res = await fetch(`${url}/api/frames/${s.shas[i]}/image`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(bytes.subarray(0, 2).toString('hex')).toBe('ffd8');
    }
    rmSync(path.join(s.archiveDir, frame.json.relPath));
    const gone = await get(`${url}/api/frames/${s.shas[0]}/image`);
    expect(gone.status).toBe(404);
    expect(gone.json.error.code).toBe('PW_E_REVIEW_IMAGE_GONE');
    expect(gone.json.error.message).toMatch(/neither the watch folder nor the archive/);
    expect((await get(`${url}/api/frames/${'a'.repeat(64)}`)).json.error.code).toBe('PW_E_REVIEW_NOT_FOUND');
    expect((await get(`${url}/api/frames/nothex`)).status).toBe(400);
  });

  it('writes labels, answers with the new state, and keeps their history', async () => {
    const { s, url } = await serve();
    const sha = s.shas[3]!;
    const a = await post(`${url}/api/labels`, { sha256: sha, action: 'confirm', label: s.labels[3], user: 'ana' });
    expect(a.status).toBe(200);
    expect(a.json.state).toMatchObject({ status: 'validated', label: s.labels[3], user: 'ana' });
    const b = await post(`${url}/api/labels`, { sha256: sha, action: 'correct', label: 'protist', user: 'ben' });
    expect(b.json.record).toMatchObject({ previousStatus: 'validated', status: 'validated', label: 'protist' });
    const h = await get(`${url}/api/labels/${sha}/history`);
    expect(h.json.state).toMatchObject({ status: 'validated', label: 'protist', user: 'ben' });
    expect(h.json.events.map((e: { user: string }) => e.user)).toEqual(['ana', 'ben']);
    expect((await get(`${url}/api/review/queue?status=validated`)).json.items.map((i: { sha256: string }) => i.sha256)).toEqual([sha]);
  });

  it('validates bodies and answers { error: { code, message } } with fitting status codes', async () => {
    const { s, url } = await serve();
    const cases: [unknown, number, string, RegExp][] = [
      [{ sha256: 'x', action: 'confirm', user: 'a' }, 400, 'PW_E_REVIEW_REQUEST', /sha256/],
      [{ sha256: s.shas[0], action: 'approve', user: 'a' }, 400, 'PW_E_REVIEW_REQUEST', /action/],
      [{ sha256: s.shas[0], action: 'confirm' }, 400, 'PW_E_REVIEW_REQUEST', /user/],
      [{ sha256: s.shas[0], action: 'correct', user: 'a' }, 400, 'PW_E_REVIEW_REQUEST', /label: required/],
      [{ sha256: s.shas[0], action: 'correct', label: '../etc', user: 'a' }, 400, 'PW_E_REVIEW_REQUEST', /class name/],
      [{ sha256: s.shas[0], action: 'confirm', user: 'a', extra: 1 }, 400, 'PW_E_REVIEW_REQUEST', /extra: unknown field/],
      [{ sha256: 'b'.repeat(64), action: 'confirm', user: 'a' }, 404, 'PW_E_REVIEW_NOT_FOUND', /sha256/],
      [{ sha256: s.shas[0], action: 'confirm', label: 'wrong', user: 'a' }, 409, 'PW_E_REVIEW_CONFLICT', /current label/],
      [{ sha256: s.shas[0], action: 'correct', label: 'ctenophore', user: 'a' }, 422, 'PW_E_REVIEW_NEW_CLASS', /newClass/],
      [[1, 2], 400, 'PW_E_REVIEW_REQUEST', /JSON object/],
    ];
    for (const [body, status, code, message] of cases) {
      const r = await post(`${url}/api/labels`, body);
      expect([r.status, r.json.error?.code], JSON.stringify(body)).toEqual([status, code]);
      expect(r.json.error.message).toMatch(message);
    }
    const broken = await fetch(`${url}/api/labels`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sha256":' });
    expect(broken.status).toBe(400);
    expect((await broken.json()).error.code).toBe('PW_E_REVIEW_REQUEST');
    expect((await get(`${url}/api/review/queue?limit=0`)).json.error.message).toMatch(/limit/);
    expect((await get(`${url}/api/review/queue?status=maybe`)).status).toBe(400);
    expect((await get(`${url}/api/review/queue?since=yesterday`)).json.error.message).toMatch(/since/);
    // Nothing was written by any of these.
    expect(s.review.validatedCounts().lastEventId).toBe(0);
    // A new class is accepted when flagged.
    const ok = await post(`${url}/api/labels`, { sha256: s.shas[0], action: 'correct', label: 'ctenophore', user: 'a', newClass: true });
    expect(ok.json.record.newClass).toBe(true);
    expect((await get(`${url}/api/classes`)).json.classes).toContainEqual({ name: 'ctenophore', known: false, validated: 1 });
  });

  it('bulk-confirms a page and reports items that could not apply', async () => {
    const { s, url } = await serve();
    const copepods = (await get(`${url}/api/review/queue?label=copepod`)).json.items as { sha256: string }[];
    const items = copepods.map((i) => ({ sha256: i.sha256, action: 'confirm', label: 'copepod' }));
    items.push({ sha256: s.shas[1]!, action: 'confirm', label: 'copepod' }); // s.shas[1] is a detritus
    const r = await post(`${url}/api/labels/bulk`, { user: 'ana', items });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ applied: copepods.length, failed: 1 });
    expect(r.json.results.at(-1)).toMatchObject({ ok: false, error: { code: 'PW_E_REVIEW_CONFLICT' } });
    expect((await get(`${url}/api/review/queue?label=copepod`)).json.total).toBe(0);
    expect((await post(`${url}/api/labels/bulk`, { user: 'ana', items: [] })).json.error.message).toMatch(/items/);
  });

  it('serves counts per class in buckets, and the classes', async () => {
    const { url } = await serve();
    const c = await get(`${url}/api/counts?since=${T0}&bucketS=600`);
    expect(c.json).toMatchObject({ windowMs: 60_000, bucketMs: 600_000, total: 12, totals: { copepod: 4, detritus: 4, protist: 4 } });
    expect(c.json.buckets).toEqual([{ start: T0, end: T0 + 600_000, total: 12, counts: { copepod: 4, detritus: 4, protist: 4 } }]);
    expect(c.json.validated).toMatchObject({ total: 0 });
    const classes = (await get(`${url}/api/classes`)).json.classes;
    expect(classes.map((x: { name: string }) => x.name)).toEqual(['copepod', 'detritus', 'protist']);
  });

  it('the root URL leads to the review page, with or without a token required', async () => {
    for (const token of [undefined, 's3cret-token']) {
      const { url } = await serve(token ? { token } : {});
      const root = await fetch(`${url}/`, { redirect: 'manual' });
      expect(root.status).toBe(302);
      expect(root.headers.get('location')).toBe('/review');
      // Followed as a browser does, it lands on the page (or, off loopback, its login form).
      const landed = await fetch(`${url}/`);
      expect(landed.status).toBe(200);
      expect(landed.url).toBe(`${url}/review`);
      expect(await landed.text()).toContain(token ? 'name="token"' : 'id="grid"');
    }
  });

  it('off loopback: the API needs the bearer token; a browser logs in with a form and gets an HttpOnly cookie', async () => {
    const { url } = await serve({ token: 's3cret-token' });
    expect((await fetch(`${url}/api/classes`)).status).toBe(401);
    expect((await fetch(`${url}/api/classes`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
    // The page without a session shows the login form.
    const page = await fetch(`${url}/review`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('name="token"');
    const wrong = await fetch(`${url}/review/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const login = await fetch(`${url}/review/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=s3cret-token' });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain('s3cret-token');
    const session = cookie.split(';')[0]!;
    expect((await fetch(`${url}/api/classes`, { headers: { cookie: session } })).status).toBe(200);
    const reviewPage = await fetch(`${url}/review`, { headers: { cookie: session } });
    expect(await reviewPage.text()).toContain('id="grid"');
    expect((await fetch(`${url}/api/classes`, { headers: { cookie: 'pw_review_session=forged' } })).status).toBe(401);
    // A browser session opens the review routes only, not the rest of the server.
    expect((await fetch(`${url}/metrics`, { headers: { cookie: session } })).status).toBe(401);
    expect((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
    // Scripts with the token see the page itself, not the login form.
    expect(await (await fetch(`${url}/review`, { headers: { authorization: 'Bearer s3cret-token' } })).text()).toContain('id="grid"');
    // Logging out ends the session (the page's form posts it as a form, as every change must be JSON or that form).
    const logout = await fetch(`${url}/review/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: session, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(logout.status).toBe(303);
    expect((await fetch(`${url}/api/classes`, { headers: { cookie: session } })).status).toBe(401);
  });
});
