// Images are found by their SHA-256, not by their path: a camera that reuses a file name (per cast,
// per day) must never make the review page show, the fine-tuner train on, or the exporter write the
// bytes of another frame. A file whose bytes no longer match its frame is a coded error, never sent.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixtureImages, sha256 } from '../helpers/images.js';
import { put, tempDir } from '../ingest/harness.js';
import { classified } from '../store/helpers.js';
import { imageRig, type ImageRig } from './image-rig.js';

const [A, B, C] = fixtureImages();

/** Every regular file below `dir`, by the SHA-256 of its bytes. */
function filesByHash(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, name);
    if (statSync(p).isFile()) out.set(sha256(readFileSync(p)), p);
  }
  return out;
}

async function image(url: string, sha: string): Promise<{ status: number; bytes: Buffer; type: string | null }> {
  const res = await fetch(`${url}/api/frames/${sha}/image`);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') };
}

describe('images by content (issue 26, item 2)', () => {
  let root: string;
  let cleanup: () => void;
  let rig: ImageRig | undefined;

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir('image-content'));
  });
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
    cleanup();
  });

  it('archive: two images under one reused name are both kept, and each sha serves, trains on and exports its own bytes; a tampered copy is refused with a code', async () => {
    rig = await imageRig(root, 'archive');
    const { h } = rig;
    const name = join(h.watchDir, 'cast-7', 'img0001.jpg');
    put(name, A!.bytes);
    await rig.settled(1, 'first image archived');
    put(name, B!.bytes); // the camera starts a new cast and numbers from 1 again
    await rig.settled(2, 'second image archived');

    expect(rig.store.hasFrame(A!.sha256) && rig.store.hasFrame(B!.sha256)).toBe(true);
    const archived = filesByHash(h.archiveDir);
    expect(archived.has(A!.sha256) && archived.has(B!.sha256)).toBe(true);

    // The review page: each frame's own bytes.
    for (const f of [A!, B!]) {
      const got = await image(rig.url, f.sha256);
      expect(got.status).toBe(200);
      expect(got.type).toBe('image/jpeg');
      expect(sha256(got.bytes)).toBe(f.sha256);
    }

    // The fine-tuner: each validated label's file holds that frame's bytes.
    for (const f of [A!, B!]) rig.review.label({ sha256: f.sha256, action: 'confirm', label: 'copepod', user: 'sci' });
    const ft = await rig.finetuneFiles();
    expect(ft.missing).toBe(0);
    expect(ft.found).toHaveLength(2);
    for (const f of ft.found) expect(sha256(readFileSync(f.file))).toBe(f.sha256);

    // The exporter.
    for (const f of [A!, B!]) expect(sha256((await rig.exportImage('cast-7/img0001.jpg', f.sha256))!.bytes)).toBe(f.sha256);

    // Someone overwrites B's archived copy with another image: refused, never sent, never trained on.
    writeFileSync(archived.get(B!.sha256)!, C!.bytes);
    const tampered = await image(rig.url, B!.sha256);
    expect(tampered.status).toBe(409);
    expect(JSON.parse(tampered.bytes.toString()).error.code).toBe('PW_E_IMAGE_MISMATCH');
    expect(tampered.bytes.includes(C!.bytes.subarray(0, 64))).toBe(false);
    expect(rig.httpLines.some((l) => l.code === 'PW_E_IMAGE_MISMATCH' && l.sha256 === B!.sha256)).toBe(true);
    const after = await rig.finetuneFiles();
    expect(after.missing).toBe(1);
    expect(after.found.map((f) => f.sha256)).toEqual([A!.sha256]);
    expect(await rig.exportImage('cast-7/img0001.jpg', B!.sha256)).toBeNull();
    // A's copy is untouched and still served.
    expect(sha256((await image(rig.url, A!.sha256)).bytes)).toBe(A!.sha256);
  });

  it('archives written before content names (img0001-1.jpg) are still served by content', async () => {
    rig = await imageRig(root, 'archive');
    const { h } = rig;
    // As the old disposer left them: the first image under its name, the next one suffixed.
    put(join(h.archiveDir, 'old', 'img0001.jpg'), A!.bytes);
    put(join(h.archiveDir, 'old', 'img0001-1.jpg'), B!.bytes);
    const at = Date.now();
    for (const f of [A!, B!]) {
      const file = { path: join(h.watchDir, 'old', 'img0001.jpg'), relPath: 'old/img0001.jpg', sha256: f.sha256, bytes: f.bytes.length, arrivedAt: at, mtimeMs: at };
      rig.store.recordClassified([classified(file, 'copepod', at)]);
    }
    for (const f of [A!, B!]) {
      const got = await image(rig.url, f.sha256);
      expect(got.status).toBe(200);
      expect(sha256(got.bytes)).toBe(f.sha256);
    }
    expect(rig.httpLines.filter((l) => l.level === 40)).toEqual([]); // other frames met on the way are not errors
  });

  it('leave: a reused name overwrites the first image in the watch folder; its frame answers PW_E_IMAGE_MISMATCH, never the second image', async () => {
    rig = await imageRig(root, 'leave');
    const name = join(rig.h.watchDir, 'img0001.jpg');
    put(name, A!.bytes);
    await rig.settled(1, 'first image stored');
    put(name, B!.bytes);
    await rig.settled(2, 'second image stored');
    expect(rig.store.hasFrame(B!.sha256)).toBe(true);

    const second = await image(rig.url, B!.sha256);
    expect(second.status).toBe(200);
    expect(sha256(second.bytes)).toBe(B!.sha256);
    const first = await image(rig.url, A!.sha256);
    expect(first.status).toBe(409);
    expect(JSON.parse(first.bytes.toString()).error.code).toBe('PW_E_IMAGE_MISMATCH');

    for (const f of [A!, B!]) rig.review.label({ sha256: f.sha256, action: 'confirm', label: 'copepod', user: 'sci' });
    const ft = await rig.finetuneFiles();
    expect(ft.found.map((f) => f.sha256)).toEqual([B!.sha256]);
    expect(ft.missing).toBe(1);
  });
});
