// Real NDSB images for tests: the committed fixture set, and distinct variants of it (rotations
// and flips of real plankton) when a test needs more images than the fixture holds.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export const FIXTURE_DIR = path.resolve(import.meta.dirname, '../fixtures/ndsb');

export interface FixtureImage {
  label: string;
  name: string;
  bytes: Buffer;
  sha256: string;
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The committed fixture images, sorted by class then name. */
export function fixtureImages(): FixtureImage[] {
  const out: FixtureImage[] = [];
  for (const label of readdirSync(FIXTURE_DIR).sort()) {
    if (label.includes('.')) continue;
    for (const name of readdirSync(path.join(FIXTURE_DIR, label)).sort()) {
      const bytes = readFileSync(path.join(FIXTURE_DIR, label, name));
      out.push({ label, name, bytes, sha256: sha256(bytes) });
    }
  }
  return out;
}

/** `count` distinct real images: the fixtures, then rotated/flipped versions of them (PNG or JPEG). */
export async function manyImages(count: number): Promise<FixtureImage[]> {
  const base = fixtureImages();
  const out: FixtureImage[] = [];
  const transforms: ((s: sharp.Sharp) => sharp.Sharp)[] = [
    (s) => s,
    (s) => s.rotate(90),
    (s) => s.rotate(180),
    (s) => s.rotate(270),
    (s) => s.flip(),
    (s) => s.flop(),
    (s) => s.flip().rotate(90),
  ];
  for (let t = 0; out.length < count && t < transforms.length; t++) {
    for (const image of base) {
      if (out.length >= count) break;
      if (t === 0) {
        out.push(image);
        continue;
      }
      const bytes = await transforms[t]!(sharp(image.bytes)).jpeg({ quality: 92 }).toBuffer();
      out.push({ label: image.label, name: `t${t}-${image.name}`, bytes, sha256: sha256(bytes) });
    }
  }
  if (out.length < count) throw new Error(`only ${out.length} distinct images available`);
  return out;
}

/** Files the daemon must quarantine, each with the code it must store. */
export async function badFiles(good: Buffer): Promise<{ name: string; bytes: Buffer; code: string }[]> {
  const png = await sharp(good).png().toBuffer();
  return [
    { name: 'empty.jpg', bytes: Buffer.alloc(0), code: 'PW_E_IMAGE_EMPTY' },
    { name: 'truncated.jpg', bytes: good.subarray(0, Math.floor(good.length / 2)), code: 'PW_E_IMAGE_CORRUPT' },
    { name: 'notes.txt', bytes: Buffer.from('cast 14, station 3: net torn\n'), code: 'PW_E_IMAGE_FORMAT' },
    { name: 'garbage.png', bytes: Buffer.concat([png.subarray(0, 40), Buffer.alloc(200, 7)]), code: 'PW_E_IMAGE_CORRUPT' },
  ];
}
