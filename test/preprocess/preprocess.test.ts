// The preprocess stage on real plankton images and on every kind of bad file.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { decodeGray } from '../../src/preprocess/decode.js';
import { DEFAULT_PREPROCESS, organismArea, prepare, resize } from '../../src/preprocess/prepare.js';
import { preprocessFrame } from '../../src/preprocess/preprocess.js';
import { PlankwatchError } from '../../src/errors.js';
import { fixtureImages } from '../helpers/images.js';

const LIMIT = { maxPixels: 25_000_000 };

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof PlankwatchError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('decodeGray', () => {
  const jpeg = fixtureImages()[0]!.bytes;

  it('decodes the NDSB JPEG (stored as RGB with R = G = B) to one gray channel of the same size', async () => {
    const meta = await sharp(jpeg).metadata();
    const g = await decodeGray(jpeg, LIMIT);
    expect(g.format).toBe('jpeg');
    expect([g.width, g.height]).toEqual([meta.width, meta.height]);
    expect(g.gray.length).toBe(g.width * g.height);
    const { data } = await sharp(jpeg).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    let maxDiff = 0;
    for (let i = 0; i < data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(data[i]! - g.gray[i]!));
    expect(maxDiff).toBeLessThanOrEqual(1);
  });

  it('accepts PNG (gray, colour with alpha on white) and TIFF', async () => {
    const gray = await sharp(jpeg).grayscale().png().toBuffer();
    const rgba = await sharp({ create: { width: 10, height: 6, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const tiff = await sharp(jpeg).tiff().toBuffer();
    expect((await decodeGray(gray, LIMIT)).format).toBe('png');
    const transparent = await decodeGray(rgba, LIMIT);
    expect(Math.min(...transparent.gray)).toBe(255); // transparent becomes the white background
    expect((await decodeGray(tiff, LIMIT)).format).toBe('tiff');
  });

  it('rejects empty, foreign, truncated, garbled and oversized input with stable codes', async () => {
    expect(await codeOf(decodeGray(Buffer.alloc(0), LIMIT))).toBe('PW_E_IMAGE_EMPTY');
    expect(await codeOf(decodeGray(Buffer.from('hello, not an image'), LIMIT))).toBe('PW_E_IMAGE_FORMAT');
    expect(await codeOf(decodeGray(await sharp(jpeg).webp().toBuffer(), LIMIT))).toBe('PW_E_IMAGE_FORMAT');
    expect(await codeOf(decodeGray(jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), LIMIT))).toBe('PW_E_IMAGE_CORRUPT');
    const png = await sharp(jpeg).png().toBuffer();
    expect(await codeOf(decodeGray(Buffer.concat([png.subarray(0, 60), Buffer.alloc(300, 9)]), LIMIT))).toBe('PW_E_IMAGE_CORRUPT');
    const big = await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toBuffer();
    expect(await codeOf(decodeGray(big, { maxPixels: 100_000 }))).toBe('PW_E_IMAGE_TOO_LARGE');
  });
});

describe('prepare', () => {
  const image = (w: number, h: number, fill = 255) => ({ gray: new Uint8Array(w * h).fill(fill), width: w, height: h, format: 'png' });

  it('pads a small organism at its own size (no enlargement) in the centre', () => {
    const img = image(10, 4, 0); // a dark 10x4 organism
    const p = prepare(img, 48, DEFAULT_PREPROCESS);
    expect(p.size).toBe(48);
    let lit = 0;
    for (const v of p.pixels) if (v > 0.5) lit++;
    expect(lit).toBe(40); // 10 x 4, not scaled up
    expect(p.pixels[22 * 48 + 19]).toBeCloseTo(1); // inside the centred block (rows 22..25, cols 19..28)
    expect(p.pixels[0]).toBe(0); // background is 0 after inversion
  });

  it('shrinks a large image to fit without distorting it', () => {
    const img = image(200, 100, 0);
    const p = prepare(img, 50, DEFAULT_PREPROCESS);
    let lit = 0;
    for (const v of p.pixels) if (v > 0.5) lit++;
    expect(lit).toBe(50 * 25); // aspect 2:1 kept
  });

  it('enlarges to fit when noUpscale is off', () => {
    const p = prepare(image(10, 10, 0), 40, { ...DEFAULT_PREPROCESS, noUpscale: false });
    expect(Array.from(p.pixels).every((v) => v > 0.99)).toBe(true);
  });

  it('area-averages when shrinking and counts organism area', () => {
    const src = new Uint8Array([0, 255, 0, 255]);
    expect(Array.from(resize(src, 2, 2, 1, 1))).toEqual([128]);
    expect(organismArea({ gray: new Uint8Array([0, 255, 250, 100]), width: 2, height: 2, format: 'png' }, 255)).toBe(2);
  });

  it('prepares one input per ensemble size from a real image, and stores its true size', async () => {
    const { bytes, sha256 } = fixtureImages()[5]!;
    const meta = await sharp(bytes).metadata();
    const frame = await preprocessFrame(
      { path: '/x.jpg', relPath: 'x.jpg', sha256, bytes: bytes.length, arrivedAt: 0 },
      bytes,
      { maxPixels: 1e7, inputs: [{ size: 48, spec: DEFAULT_PREPROCESS }, { size: 64, spec: DEFAULT_PREPROCESS }] },
    );
    expect([frame.width, frame.height]).toEqual([meta.width, meta.height]);
    expect(frame.area).toBeGreaterThan(0);
    expect(frame.area).toBeLessThan(frame.width * frame.height);
    expect([...frame.inputs.keys()]).toEqual(['48', '64']);
    expect(frame.inputs.get('64')!.pixels.length).toBe(64 * 64);
  });
});
