// Camera profiles on real plankton: NDSB fixtures (bright-field gray) and the same organisms as a
// dark-field camera gives them, gray and tinted colour (made in the test, see helpers/cameras.ts).
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { borderLevel, canonicalImage, detectPolarity, NDSB_CAMERA, type CameraProfile } from '../../src/preprocess/camera.js';
import { decodeGray } from '../../src/preprocess/decode.js';
import { DEFAULT_PREPROCESS, prepare } from '../../src/preprocess/prepare.js';
import { preprocessFrame } from '../../src/preprocess/preprocess.js';
import { darkFieldColour, darkFieldGray } from '../helpers/cameras.js';
import { fixtureImages } from '../helpers/images.js';

const LIMIT = { maxPixels: 25_000_000 };
const images = fixtureImages();
const file = (relPath: string, bytes: Buffer) => ({ path: relPath, relPath, sha256: relPath, bytes: bytes.length, arrivedAt: 0 });
const camera = (polarity: CameraProfile['polarity'], colour: CameraProfile['colour'] = 'gray', pixelSizeUm = 0): CameraProfile => ({ polarity, colour, pixelSizeUm });
const INPUTS = [{ size: 48, spec: DEFAULT_PREPROCESS }, { size: 64, spec: { ...DEFAULT_PREPROCESS, noUpscale: false } }];

describe('polarity', () => {
  it('finds every fixture bright-field, and its dark-field versions (gray and colour) dark-field', async () => {
    for (const img of images) {
      expect(detectPolarity(await decodeGray(img.bytes, LIMIT)), img.name).toBe('bright-field');
      expect(detectPolarity(await decodeGray(await darkFieldGray(img.bytes), LIMIT)), img.name).toBe('dark-field');
      expect(detectPolarity(await decodeGray(await darkFieldColour(img.bytes), LIMIT)), img.name).toBe('dark-field');
    }
  });

  it('goes by the border, so an organism covering most of it does not flip the answer', () => {
    // 10 x 10, background 250 on the border's last fifth, organism (100) on the rest of it.
    const gray = new Uint8Array(100).fill(100);
    for (let x = 8; x < 10; x++) for (let y = 0; y < 10; y++) gray[y * 10 + x] = 250;
    const image = { gray, width: 10, height: 10, format: 'png' };
    expect(borderLevel(image)).toBe(100);
    expect(detectPolarity(image)).toBe('bright-field');
    const dark = { ...image, gray: gray.map((v) => 255 - v) };
    expect(detectPolarity(dark)).toBe('dark-field');
  });
});

describe('the canonical form', () => {
  it('leaves a bright-field gray image as it is: the shipped members read the same bytes', async () => {
    for (const img of images.slice(0, 24)) {
      const decoded = await decodeGray(img.bytes, LIMIT);
      const canonical = canonicalImage(decoded, 'bright-field');
      expect(canonical.image).toBe(decoded);
      const before = await preprocessFrame(file(img.name, img.bytes), img.bytes, { maxPixels: LIMIT.maxPixels, inputs: INPUTS });
      const declared = await preprocessFrame(file(img.name, img.bytes), img.bytes, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: NDSB_CAMERA });
      const auto = await preprocessFrame(file(img.name, img.bytes), img.bytes, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: camera('auto') });
      for (const key of ['48', '64-fit']) {
        expect(Buffer.from(declared.inputs.get(key)!.pixels.buffer).equals(Buffer.from(before.inputs.get(key)!.pixels.buffer))).toBe(true);
        expect(Buffer.from(auto.inputs.get(key)!.pixels.buffer).equals(Buffer.from(before.inputs.get(key)!.pixels.buffer))).toBe(true);
      }
      // Against the image's own background (near white), not an assumed 255.
      expect(declared.area).toBeGreaterThan(0);
      expect(declared.polarity).toBe('bright-field');
    }
  });

  it('makes a dark-field image into exactly the bright-field one, prepared inputs and area alike', async () => {
    for (const img of images) {
      const dark = await darkFieldGray(img.bytes);
      const bright = await preprocessFrame(file(img.name, img.bytes), img.bytes, { maxPixels: LIMIT.maxPixels, inputs: INPUTS });
      for (const profile of [camera('dark-field'), camera('auto')]) {
        const fromDark = await preprocessFrame(file(img.name, dark), dark, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: profile });
        expect(fromDark.polarity).toBe('dark-field');
        expect(fromDark.area).toBe(bright.area);
        for (const key of ['48', '64-fit']) expect(Array.from(fromDark.inputs.get(key)!.pixels)).toEqual(Array.from(bright.inputs.get(key)!.pixels));
      }
    }
  });

  it('read as bright-field (the old assumption), a dark-field image becomes a bright box; its area, measured against its own border, does not change', async () => {
    const img = images[0]!;
    const dark = await darkFieldGray(img.bytes);
    const wrong = await preprocessFrame(file(img.name, dark), dark, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: NDSB_CAMERA });
    const right = await preprocessFrame(file(img.name, dark), dark, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: camera('dark-field') });
    // The image's background inverted to near 1, on a padding of 0: a bright box.
    const decoded = await decodeGray(dark, LIMIT);
    const left = Math.floor((48 - decoded.width) / 2);
    const top = Math.floor((48 - decoded.height) / 2);
    expect(wrong.inputs.get('48')!.pixels[top * 48 + left]).toBeGreaterThan(0.9);
    expect(right.inputs.get('48')!.pixels[top * 48 + left]).toBeLessThan(0.1);
    expect(wrong.area).toBe(right.area);
    // Against an assumed white background (as before camera profiles), nearly all of it was "organism".
    let old = 0;
    for (const v of decoded.gray) if (Math.abs(v - 255) > 25) old++;
    expect(old).toBeGreaterThan(decoded.gray.length * 0.9);
    expect(right.area).toBeLessThan(decoded.gray.length * 0.6);
  });

  it('reads a tinted colour dark-field image as its luminance, organism bright on a zero background, close to the gray original', async () => {
    let meanDiff = 0;
    let n = 0;
    for (const img of images) {
      const colour = await darkFieldColour(img.bytes);
      const bright = await preprocessFrame(file(img.name, img.bytes), img.bytes, { maxPixels: LIMIT.maxPixels, inputs: INPUTS });
      const fromColour = await preprocessFrame(file(img.name, colour), colour, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: camera('dark-field', 'rgb') });
      const a = fromColour.inputs.get('48')!.pixels;
      const b = bright.inputs.get('48')!.pixels;
      expect(a[0]).toBe(0);
      for (let i = 0; i < a.length; i++) meanDiff += Math.abs(a[i]! - b[i]!);
      n += a.length;
    }
    // The tint dims the organism (luminance of the tint about 0.75) and lifts the background a little.
    expect(meanDiff / n).toBeLessThan(0.05);
  });

  it('reports the area in square micrometres where the pixel size is known', async () => {
    const img = images[3]!;
    const known = await preprocessFrame(file(img.name, img.bytes), img.bytes, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: camera('bright-field', 'gray', 12.5) });
    const unknown = await preprocessFrame(file(img.name, img.bytes), img.bytes, { maxPixels: LIMIT.maxPixels, inputs: INPUTS });
    expect(known.areaUm2).toBe(known.area * 12.5 * 12.5);
    expect(unknown.areaUm2).toBeUndefined();
  });

  it('flattens transparency onto the camera\'s own background', async () => {
    const rgba = await sharp({ create: { width: 12, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const dark = await preprocessFrame(file('t.png', rgba), rgba, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: camera('dark-field') });
    expect(dark.area).toBe(0);
    expect(Math.max(...dark.inputs.get('48')!.pixels)).toBe(0);
    const bright = await preprocessFrame(file('t.png', rgba), rgba, { maxPixels: LIMIT.maxPixels, inputs: INPUTS });
    expect(bright.area).toBe(0);
  });

  it('prepares exactly as prepare() does on the canonical image', async () => {
    const img = images[5]!;
    const dark = await darkFieldGray(img.bytes);
    const canonical = canonicalImage(await decodeGray(dark, LIMIT), 'dark-field');
    const frame = await preprocessFrame(file(img.name, dark), dark, { maxPixels: LIMIT.maxPixels, inputs: INPUTS, camera: camera('dark-field') });
    expect(Array.from(frame.inputs.get('48')!.pixels)).toEqual(Array.from(prepare(canonical.image, 48, DEFAULT_PREPROCESS).pixels));
  });
});
