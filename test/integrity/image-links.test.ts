// Symlinks and special files in the watch folder: a link is never followed (neither at ingest nor
// when an image is served), and a FIFO, socket or device named like an image is reported with a
// code and a log line at once, never read (opening a FIFO blocks), and never stops the ingest.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixtureImages, sha256 } from '../helpers/images.js';
import { put, sleep, tempDir, waitFor } from '../ingest/harness.js';
import { imageRig, type ImageRig } from './image-rig.js';

const [A, B, C] = fixtureImages();
const SECRET = 'root:$6$notreally:19000:0:99999:7:::\n';

async function image(url: string, sha: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/api/frames/${sha}/image`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()).toString('latin1') };
}

function rejectsByCode(rig: ImageRig): Record<string, number> {
  return rig.store.status().rejects.byCode;
}

describe('symlinks and special files (issue 26, item 3)', () => {
  let root: string;
  let cleanup: () => void;
  let rig: ImageRig | undefined;
  let outside: string;
  let server: Server | undefined;

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir('image-links'));
    outside = join(root, 'outside'); // stands in for /etc: not below the watch folder
    mkdirSync(outside);
  });
  afterEach(async () => {
    server?.close();
    server = undefined;
    await rig?.stop();
    rig = undefined;
    cleanup();
  });

  it('a symlink in the watch folder is quarantined as PW_E_IMAGE_LINK, never followed, and its target is never served', async () => {
    const shadow = join(outside, 'shadow');
    writeFileSync(shadow, A!.bytes); // a real image at first, so that following the link would classify it
    rig = await imageRig(root, 'archive');
    const { h } = rig;
    symlinkSync(shadow, join(h.watchDir, 'evil.jpg'));
    // A link to a folder outside: never descended into.
    put(join(outside, 'dir', 'inside.jpg'), B!.bytes);
    symlinkSync(join(outside, 'dir'), join(h.watchDir, 'cast-2'));
    put(join(h.watchDir, 'real.jpg'), C!.bytes);
    await rig.settled(3, 'the real image stored and both links quarantined');

    expect(rig.store.hasFrame(C!.sha256)).toBe(true);
    expect(rig.store.hasFrame(A!.sha256)).toBe(false);
    expect(rig.store.hasFrame(B!.sha256)).toBe(false);
    expect(rejectsByCode(rig).PW_E_IMAGE_LINK).toBe(2);
    expect(h.lines.some((l) => l.code === 'PW_E_IMAGE_LINK' && l.file === 'evil.jpg')).toBe(true);
    // The link itself was moved, not its target.
    expect(lstatSync(join(h.quarantineDir, 'evil.jpg')).isSymbolicLink()).toBe(true);
    expect(readdirSync(h.archiveDir, { recursive: true }).some((n) => String(n).includes('evil'))).toBe(false);

    // The target changes to something secret: nothing serves it.
    writeFileSync(shadow, SECRET);
    const res = await image(rig.url, A!.sha256);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('root:');
  });

  it('an archived image replaced by a symlink is refused with PW_E_IMAGE_LINK, even when the target holds the same bytes', async () => {
    rig = await imageRig(root, 'archive');
    const { h } = rig;
    put(join(h.watchDir, 'cast-1', 'a.jpg'), A!.bytes);
    await rig.settled(1, 'image archived');
    const archived = (readdirSync(h.archiveDir, { recursive: true }) as string[]).map((n) => join(h.archiveDir, n)).find((p) => lstatSync(p).isFile())!;
    const shadow = join(outside, 'shadow');
    writeFileSync(shadow, A!.bytes);
    unlinkSync(archived);
    symlinkSync(shadow, archived);
    const res = await image(rig.url, A!.sha256);
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body).error.code).toBe('PW_E_IMAGE_LINK');
    writeFileSync(shadow, SECRET);
    const again = await image(rig.url, A!.sha256);
    expect(again.status).toBe(409);
    expect(again.body).not.toContain('root:');
  });

  it('an archived image replaced by a FIFO is refused with PW_E_IMAGE_SPECIAL at once, never opened', async () => {
    rig = await imageRig(root, 'archive');
    const { h } = rig;
    put(join(h.watchDir, 'a.jpg'), A!.bytes);
    await rig.settled(1, 'image archived');
    unlinkSync(join(h.archiveDir, 'a.jpg'));
    execFileSync('mkfifo', [join(h.archiveDir, 'a.jpg')]);
    const started = Date.now();
    const res = await image(rig.url, A!.sha256);
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body).error.code).toBe('PW_E_IMAGE_SPECIAL');
    expect(Date.now() - started).toBeLessThan(2000);
    const ft = await rig.finetuneFiles();
    expect(ft.found).toEqual([]);
  });

  it('a FIFO and a socket named like images are reported with PW_E_IMAGE_SPECIAL and one log line within one rescan; the next real image is ingested', async () => {
    rig = await imageRig(root, 'archive', { rescanIntervalMs: 200 });
    const { h } = rig;
    execFileSync('mkfifo', [join(h.watchDir, 'y.jpg')]);
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(join(h.watchDir, 'z.jpg'), resolve));
    await h.ingest.rescan();
    await waitFor(() => (rejectsByCode(rig!).PW_E_IMAGE_SPECIAL ?? 0) === 2, 3000, 'both special files reported');
    const special = () => h.lines.filter((l) => l.code === 'PW_E_IMAGE_SPECIAL');
    expect(special().map((l) => l.file).sort()).toEqual(['y.jpg', 'z.jpg']);

    // The daemon goes on: a real image after it is stored.
    put(join(h.watchDir, 'next.jpg'), A!.bytes);
    await waitFor(() => rig!.store.hasFrame(A!.sha256), 5000, 'the next image stored');
    // Several rescans later the special files have not been reported again.
    await sleep(700);
    expect(special()).toHaveLength(2);
    expect(rejectsByCode(rig).PW_E_IMAGE_SPECIAL).toBe(2);
  });
});
