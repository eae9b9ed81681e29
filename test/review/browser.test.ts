// The review page end to end in real headless Chromium (playwright-core, Debian's chromium): the
// daemon runs as a child process on a tiny test ensemble built here, real NDSB images are dropped
// into its watch folder, and a reviewer works the queue with the keyboard only. Then the database
// rows are checked.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
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

  it.skipIf(!existsSync(CHROMIUM) && !process.env.CI)('a page of another site cannot act through the browser; the login and logout forms still work', async () => {
    const modelsDir = await tempModelsDir();
    cleanups.push(() => removeDir(modelsDir));
    await saveTinyMember(modelsDir, { name: 'tiny-a', version: 'v1', classes: CLASSES, size: 32, seed: 3 });
    const ensemble = await writeEnsemble(modelsDir, { version: 'review-test-2', voting: 'soft', members: [{ name: 'tiny-a', version: 'v1' }] });
    const boot = async (http: Record<string, unknown>) => {
      const dirs = daemonDirs({ classify: { ensemble, modelsDir, workers: 1 }, publish: { embeddedPort: await freePort() }, finetune: { enabled: false }, http: { port: 0, ...http } });
      cleanups.push(() => removeDir(dirs.root));
      const daemon = startDaemon(dirs.config);
      cleanups.push(async () => {
        if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
      });
      const ready = await daemon.waitForLog((l) => l.msg === 'plankwatch ready', 90_000);
      return { dirs, base: ready.http as string };
    };

    // No token, the default loopback bind: one ROI classified.
    const open = await boot({});
    const img = fixtureImages()[0]!;
    writeFileSync(path.join(open.dirs.incoming, `${img.label}-${img.name}`), img.bytes);
    await until(() => {
      const db = new Database(open.dirs.db, { readonly: true, fileMustExist: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM predictions').get() as { n: number }).n >= 1 || undefined;
      } catch {
        return undefined;
      } finally {
        db.close();
      }
    }, 120_000, 'one prediction');

    // Another site (its name resolved to this machine, as after DNS rebinding): its page sends the
    // daemon a no-cors text/plain label, a bare fine-tuning request, then posts a label form.
    const port = new URL(open.base).port;
    const evilPage = `<!doctype html><form id="f" method="post" action="http://127.0.0.1:${port}/api/labels">
      <input name="sha256" value="${img.sha256}"><input name="action" value="dubious"><input name="user" value="attacker"></form>
      <script>
        const body = JSON.stringify({ sha256: '${img.sha256}', action: 'dubious', user: 'attacker' });
        Promise.allSettled([
          fetch('http://127.0.0.1:${port}/api/labels', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body }),
          fetch('http://127.0.0.1:${port}/api/finetune/run', { method: 'POST', mode: 'no-cors' }),
        ]).then(() => document.getElementById('f').submit());
      </script>`;
    const evil = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(evilPage));
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => evil.close(() => resolve())));
    const evilPort = (evil.address() as { port: number }).port;
    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP evil.example 127.0.0.1'], headless: true });
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    // The rebound name reaches the daemon's own port: refused by Host.
    const rebound = await page.goto(`http://evil.example:${port}/api/classes`);
    expect(rebound!.status()).toBe(421);
    expect(await rebound!.text()).toContain('PW_E_HTTP_HOST');
    // The attacking page: its form post lands on the daemon's refusal.
    await page.goto(`http://evil.example:${evilPort}/`);
    await page.waitForURL(`http://127.0.0.1:${port}/api/labels`);
    expect(await page.textContent('body')).toContain('PW_E_HTTP_ORIGIN');
    const db = new Database(open.dirs.db, { readonly: true, fileMustExist: true });
    try {
      expect((db.prepare('SELECT count(*) AS n FROM label_events').get() as { n: number }).n).toBe(0);
      expect((db.prepare('SELECT count(*) AS n FROM finetune_runs').get() as { n: number }).n).toBe(0);
    } finally {
      db.close();
    }

    // With a token: the login form (a plain form post from the page) and log out still work.
    const secrets = mkdtempSync(path.join(tmpdir(), 'pw-token-'));
    cleanups.push(() => removeDir(secrets));
    writeFileSync(path.join(secrets, 'token'), 'ship-token-42\n');
    const guarded = await boot({ tokenFile: path.join(secrets, 'token') });
    const page2 = await browser.newPage();
    await page2.goto(`${guarded.base}/review`);
    await page2.fill('#token', 'not-it');
    await page2.click('button[type=submit]');
    await expect.poll(() => page2.textContent('.error')).toMatch(/token is wrong/);
    await page2.fill('#token', 'ship-token-42');
    await page2.click('button[type=submit]');
    await page2.locator('#grid').waitFor();
    await page2.locator('#logout button').click();
    await page2.waitForURL(`${guarded.base}/review/login`);
    expect(await page2.locator('#token').count()).toBe(1);
  }, 240_000);
});
