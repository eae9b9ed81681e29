// Issue: the fine-tuner looked each label's image up by SHA-256, but the training job then read the
// file by path again: a file replaced in between (a reused name, a link) was trained on under the
// label of another organism. The job now reads only a regular file that still holds the labelled
// bytes. Real images, the real image table loader the job uses.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LabelledImage } from '../../src/learn/dataset.js';
import { loadImageTable } from '../../src/learn/image-cache.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { fixtureImages } from '../helpers/images.js';

const images = fixtureImages();

describe('the fine-tuning job trains only on the labelled bytes', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'pw-ft-read-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function item(file: string, sha256: string): LabelledImage {
    return { file, rel: `labels/${sha256}`, label: 'x', bytes: 0, sha256 };
  }

  it('refuses a file whose bytes are no longer the labelled frame', async () => {
    const file = path.join(dir, 'img.jpg');
    writeFileSync(file, images[1]!.bytes); // the camera reused the name: other bytes now
    await expect(loadImageTable([item(file, images[0]!.sha256)], 32, DEFAULT_PREPROCESS, { cache: false })).rejects.toMatchObject({
      code: 'PW_E_IMAGE_MISMATCH',
    });
  });

  it('refuses a link, even to the right bytes', async () => {
    const target = path.join(dir, 'target.jpg');
    writeFileSync(target, images[0]!.bytes);
    const link = path.join(dir, 'link.jpg');
    symlinkSync(target, link);
    await expect(loadImageTable([item(link, images[0]!.sha256)], 32, DEFAULT_PREPROCESS, { cache: false })).rejects.toMatchObject({
      code: 'PW_E_IMAGE_LINK',
    });
  });

  it('reads the labelled frame when the file holds it', async () => {
    const file = path.join(dir, 'img.jpg');
    writeFileSync(file, images[0]!.bytes);
    const table = await loadImageTable([item(file, images[0]!.sha256)], 32, DEFAULT_PREPROCESS, { cache: false });
    expect(table.pixels.length).toBe(32 * 32);
    expect(table.pixels.some((p) => p > 0)).toBe(true);
  });
});
