// The review page end to end in real headless Chromium (playwright-core, Debian's chromium): the
// daemon runs as a child process on a tiny test ensemble built here, real NDSB images are dropped
// into its watch folder, and a reviewer works the queue with the keyboard only. Then the database
// rows are checked.
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { daemonDirs, startDaemon, until } from '../helpers/daemon.js';
import { fixtureImages } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const CLASSES = [
  'acantharia_protist', 'appendicularian_s_shape', 'chaetognath_other', 'copepod_cyclopoid_oithona_eggs',
  'detritus_other', 'hydromedusae_solmaris', 'protist_other', 'trichodesmium_puff',
];
const PAGE = 8;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

interface LabelRow { sha256: string; status: string; label: string; user: string }

function readLabels(dbFile: string): { labels: LabelRow[]; events: { sha256: string; action: string; user: string }[] } {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return {
      labels: db.prepare('SELECT sha256, status, label, user FROM labels ORDER BY sha256').all() as LabelRow[],
      events: db.prepare('SELECT sha256, action, user FROM label_events ORDER BY id').all() as { sha256: string; action: string; user: string }[],
    };
  } finally {
    db.close();
  }
}

describe('review page in a real browser', () => {
  it.skipIf(!existsSync(CHROMIUM) && !process.env.CI)('confirms, corrects (type-to-search and a new class), marks dubious and bulk-confirms by keyboard', async () => {
    // A two-member test ensemble (untrained, seeded): members disagree, so the queue has an order.
    const modelsDir = await tempModelsDir();
    cleanups.push(() => removeDir(modelsDir));
    await saveTinyMember(modelsDir, { name: 'tiny-a', version: 'v1', classes: CLASSES, size: 32, seed: 3 });
    await saveTinyMember(modelsDir, { name: 'tiny-b', version: 'v1', classes: CLASSES, size: 32, seed: 11 });
    const ensemble = await writeEnsemble(modelsDir, {
      version: 'review-test-1',
      voting: 'soft',
      members: [{ name: 'tiny-a', version: 'v1' }, { name: 'tiny-b', version: 'v1' }],
    });
    const dirs = daemonDirs({
      classify: { ensemble, modelsDir, workers: 1 },
      publish: { embeddedPort: await freePort() },
      review: { pageSize: PAGE, chartHours: 2 },
    });
    cleanups.push(() => removeDir(dirs.root));
    const daemon = startDaemon(dirs.config);
    cleanups.push(async () => {
      if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    });
    const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
    const base = ready.http as string;

    const images = fixtureImages().filter((_, i) => i % 5 === 0).slice(0, 20);
    for (const img of images) writeFileSync(path.join(dirs.incoming, `${img.label}-${img.name}`), img.bytes);
    await until(() => {
      const db = new Database(dirs.db, { readonly: true, fileMustExist: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM predictions').get() as { n: number }).n >= images.length || undefined;
      } catch {
        return undefined;
      } finally {
        db.close();
      }
    }, 120_000, `${images.length} predictions`);

    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    cleanups.push(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const consoleErrors: string[] = [];
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(`${base}/review`);
    await page.locator('.roi').nth(PAGE - 1).waitFor();
    expect(await page.locator('.roi').count()).toBe(PAGE);
    await page.fill('#user', 'ana');
    await page.keyboard.press('Escape'); // leave the name field: keys now drive the queue

    const sha = (i: number) => page.locator('.roi').nth(i).getAttribute('data-sha256') as Promise<string>;
    const labelOf = async (i: number) => (await page.locator('.roi').nth(i).locator('.state').textContent())!.replace(/^\S+\s+/, '').split(' ')[0]!;
    const shas = await Promise.all([0, 1, 2, 3].map(sha));
    const predicted1 = await labelOf(1);

    // c: confirm the first (most uncertain) ROI.
    await page.keyboard.press('c');
    await page.locator(`.roi.validated[data-sha256="${shas[0]}"]`).waitFor();
    // x: correct the second to another class, found by typing part of its name.
    const target = predicted1 === 'hydromedusae_solmaris' ? 'trichodesmium_puff' : 'hydromedusae_solmaris';
    await page.keyboard.press('x');
    await page.locator('#picker[open]').waitFor();
    await page.keyboard.type(target === 'trichodesmium_puff' ? 'tricho' : 'solmar');
    expect(await page.locator('#picker-list li').allTextContents()).toEqual([target]);
    await page.keyboard.press('Enter');
    await page.locator(`.roi.validated[data-sha256="${shas[1]}"]`).waitFor();
    // d: mark the third dubious.
    await page.keyboard.press('d');
    await page.locator(`.roi.dubious[data-sha256="${shas[2]}"]`).waitFor();
    // x on the fourth: a class nobody knows yet needs a second Enter.
    await page.keyboard.press('x');
    await page.keyboard.type('salp_new');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#picker-new').textContent()).toMatch(/Press Enter again to create it/);
    await page.keyboard.press('Enter');
    await page.locator(`.roi.validated[data-sha256="${shas[3]}"]`).waitFor();

    // Shift+C: confirm every ROI of the selected ROI's class still to review on this page.
    const selectedLabel = await page.locator('.roi.selected .state').textContent();
    const bulkClass = selectedLabel!.replace(/^\S+\s+/, '').split(' ')[0]!;
    const bulkShas = await page.locator('.roi.predicted').evaluateAll(
      (nodes, cls) => nodes.filter((n) => n.querySelector('.state')!.textContent!.replace(/^\S+\s+/, '').split(' ')[0] === cls).map((n) => n.getAttribute('data-sha256')!),
      bulkClass,
    );
    expect(bulkShas.length).toBeGreaterThan(0);
    await page.keyboard.press('Shift+C');
    for (const s of bulkShas) await page.locator(`.roi.validated[data-sha256="${s}"]`).waitFor();

    // The live chart drew one line per class seen.
    await expect.poll(() => page.locator('#chart polyline').count()).toBeGreaterThan(0);
    const shot = path.join(tmpdir(), 'plankwatch-review-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(consoleErrors).toEqual([]);

    // The database: states, who, and one history event per action.
    const { labels, events } = readLabels(dirs.db);
    const byS = new Map(labels.map((l) => [l.sha256, l]));
    expect(byS.get(shas[0]!)).toMatchObject({ status: 'validated', user: 'ana' });
    expect(byS.get(shas[1]!)).toMatchObject({ status: 'validated', label: target, user: 'ana' });
    expect(byS.get(shas[2]!)).toMatchObject({ status: 'dubious', user: 'ana' });
    expect(byS.get(shas[3]!)).toMatchObject({ status: 'validated', label: 'salp_new', user: 'ana' });
    for (const s of bulkShas) expect(byS.get(s)).toMatchObject({ status: 'validated', label: bulkClass, user: 'ana' });
    expect(labels).toHaveLength(4 + bulkShas.length);
    expect(events).toHaveLength(4 + bulkShas.length);
    expect(events.slice(0, 4).map((e) => e.action)).toEqual(['confirm', 'correct', 'dubious', 'correct']);
    expect(events.every((e) => e.user === 'ana')).toBe(true);

    // History through the API agrees; labels never stop classification.
    const hist = await (await fetch(`${base}/api/labels/${shas[1]}/history`)).json();
    expect(hist.events).toHaveLength(1);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 240_000);
});
