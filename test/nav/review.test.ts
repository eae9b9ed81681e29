// The ocean panel of the review page: GET /api/nav (depth profile and track from the database) and,
// in real headless Chromium where installed, the SVG profile and track the page draws from it.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/http/metrics.js';
import { HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log.js';
import { navView } from '../../src/nav/index.js';
import { computeWindow } from '../../src/nav/concentrations.js';
import { reviewRoutes } from '../../src/review/routes.js';
import { seedStore, T0 } from '../review/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(withNav: boolean) {
  const s = seedStore(12);
  cleanups.push(() => s.cleanup());
  const repo = s.store.navRepository();
  // A track across the antimeridian, and the 12 seeded ROIs tagged 2-9 m deep with 1 m³ sampled.
  repo.insertFixes(Array.from({ length: 30 }, (_, i) => ({ tMs: T0 + i * 1000, source: 'test', lat: -17 + i * 0.001, lon: ((179.99 + i * 0.001 + 180) % 360) - 180, receivedAt: T0 })));
  const ids = [...repo.frameIds(s.shas).values()];
  repo.upsertRoiPositions(ids.map((frameId, i) => ({ frameId, tMs: T0 + i * 1000, timeSource: 'filename' as const, lat: -17, lon: 180, depthM: i < 6 ? 2 : 9, temperatureC: null, salinity: null, quality: 'interpolated' as const, gapS: 1, envQuality: 'interpolated' as const, envGapS: 1, taggedAt: T0 })));
  repo.insertVolumes([{ tMs: T0, volumeM3: 0.5, source: 'test', depthM: 2 }, { tMs: T0 + 1, volumeM3: 0.5, source: 'test', depthM: 9 }]);
  computeWindow(repo, 60_000, Math.floor(T0 / 60_000) * 60_000, 5, T0);
  const http = new HttpServer({ port: 0, health: () => ({}), metrics: new Metrics(), logger: silentLogger() });
  http.register(
    reviewRoutes({
      review: s.review,
      counts: s.store,
      countsWindowMs: 60_000,
      images: { watchDir: s.watchDir, archiveDir: s.archiveDir },
      page: { pageSize: 24, enlargedPx: 160, chartHours: 6, chartRefreshS: 30 },
      ...(withNav ? { nav: navView(repo, { windowMs: 60_000, binM: 5 }) } : {}),
      logger: silentLogger(),
      now: () => T0 + 600_000,
    }),
  );
  await http.start();
  cleanups.push(() => http.stop());
  return http.url;
}

describe('ocean panel', () => {
  it('serves the depth profile per class and the track over the latest hours of data', async () => {
    const url = await serve(true);
    const res = (await (await fetch(`${url}/api/nav?hours=2`)).json()) as { enabled: boolean; profile: { bins: { depthMinM: number; volumeM3: number; total: number; perM3: Record<string, number> }[] }; track: { points: unknown[] } };
    expect(res.enabled).toBe(true);
    expect(res.profile.bins.map((b) => [b.depthMinM, b.volumeM3, b.total])).toEqual([[0, 0.5, 6], [5, 0.5, 6]]);
    // seedStore labels frames copepod, detritus, protist in turn: two of each per bin, 2 / 0.5 m³.
    expect(res.profile.bins[0]!.perM3).toEqual({ copepod: 4, detritus: 4, protist: 4 });
    expect(res.track.points).toHaveLength(30);
    const off = (await (await fetch(`${await serve(false)}/api/nav`)).json()) as { enabled: boolean };
    expect(off.enabled).toBe(false);
  });

  it.skipIf(!existsSync(CHROMIUM) && !process.env.CI)('draws the profile and a track that does not jump across the map at 180°', async () => {
    const url = await serve(true);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'], headless: true });
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/review`);
    await page.locator('#track polyline').waitFor();
    expect(await page.locator('#ocean-panel').isVisible()).toBe(true);
    expect(await page.locator('#profile polyline').count()).toBe(3);
    const xs = (await page.locator('#track polyline').getAttribute('points'))!.split(' ').map((p) => Number(p.split(',')[0]));
    for (let i = 1; i < xs.length; i++) expect(Math.abs(xs[i]! - xs[i - 1]!)).toBeLessThan(50);
    expect(await page.locator('#track-caption').textContent()).toMatch(/16\.971° S, 179\.981° W · 30 fixes/);
    expect(errors).toEqual([]);
  }, 60_000);
});
