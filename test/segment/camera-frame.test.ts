// Bad camera frames are refused with a code before any segmentation: truncated, wrong bit depth,
// all black or all white, not an image. Good ones decode to one 8-bit gray channel.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { isPlankwatchError } from '../../src/errors.js';
import { decodeCameraFrame } from '../../src/segment/index.js';

const W = 320;
const H = 200;

function gradient(): Buffer {
  const px = Buffer.alloc(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) px[y * W + x] = 120 + ((x + y) % 90);
  return px;
}

const raw = (px: Buffer, channels: 1 | 3 = 1) => sharp(px, { raw: { width: W, height: H, channels } });

async function codeOf(bytes: Buffer): Promise<string> {
  try {
    await decodeCameraFrame(bytes, 25_000_000);
    return 'decoded';
  } catch (err) {
    if (isPlankwatchError(err)) return err.code;
    throw err;
  }
}

describe('decodeCameraFrame', () => {
  it('decodes 8-bit PNG, TIFF and JPEG (gray or colour) to one gray channel', async () => {
    for (const bytes of [await raw(gradient()).png().toBuffer(), await raw(gradient()).tiff({ compression: 'none' }).toBuffer(), await raw(gradient()).jpeg().toBuffer()]) {
      const image = await decodeCameraFrame(bytes, 25_000_000);
      expect([image.width, image.height, image.bitDepth, image.gray.length]).toEqual([W, H, 8, W * H]);
    }
    const rgb = Buffer.alloc(W * H * 3, 150);
    expect((await decodeCameraFrame(await raw(rgb, 3).png().toBuffer(), 25_000_000)).gray.length).toBe(W * H);
  });

  it('gives back exactly the pixels of a lossless frame, one channel (as cameras write) or three', async () => {
    const px = gradient();
    const gray = (r: sharp.Sharp) => r.toColourspace('b-w');
    for (const bytes of [await gray(raw(px)).tiff({ compression: 'none' }).toBuffer(), await gray(raw(px)).png().toBuffer(), await raw(px).tiff({ compression: 'none' }).toBuffer(), await raw(px).png().toBuffer()]) {
      expect(Buffer.from((await decodeCameraFrame(bytes, 25_000_000)).gray).equals(px)).toBe(true);
    }
    expect((await sharp(await gray(raw(px)).tiff({ compression: 'none' }).toBuffer()).metadata()).channels).toBe(1);
  });

  it('calls a frame blank from 99.9% black (or white) pixels on, wherever the others are', async () => {
    const allowed = W * H - Math.ceil(0.999 * W * H); // pixels that may be neither
    for (const level of [0, 255]) {
      for (const at of ['start', 'end'] as const) {
        const frame = (others: number) => {
          const px = Buffer.alloc(W * H, level);
          px.fill(128, at === 'start' ? 0 : W * H - others, at === 'start' ? others : W * H);
          return raw(px).toColourspace('b-w').png().toBuffer();
        };
        expect(await codeOf(await frame(allowed))).toBe('PW_E_FRAME_BLANK');
        expect(await codeOf(await frame(allowed + 1))).toBe('decoded');
      }
    }
  });

  it('refuses truncated PNG, TIFF and JPEG frames as PW_E_IMAGE_CORRUPT', async () => {
    for (const whole of [await raw(gradient()).png().toBuffer(), await raw(gradient()).tiff({ compression: 'none' }).toBuffer(), await raw(gradient()).jpeg().toBuffer()]) {
      expect(await codeOf(whole.subarray(0, Math.floor(whole.length * 0.6)))).toBe('PW_E_IMAGE_CORRUPT');
    }
  });

  it('refuses 16-bit frames (PNG) as PW_E_FRAME_BIT_DEPTH', async () => {
    expect(await codeOf(await raw(gradient()).toColourspace('grey16').png().toBuffer())).toBe('PW_E_FRAME_BIT_DEPTH');
  });

  it('refuses all-black and all-white frames as PW_E_FRAME_BLANK, not a dark or bright but real one', async () => {
    expect(await codeOf(await raw(Buffer.alloc(W * H, 0)).png().toBuffer())).toBe('PW_E_FRAME_BLANK');
    expect(await codeOf(await raw(Buffer.alloc(W * H, 255)).png().toBuffer())).toBe('PW_E_FRAME_BLANK');
    // A dark-field frame: dark water, a few bright organisms.
    const dark = Buffer.alloc(W * H, 12);
    for (let i = 0; i < 400; i++) dark[5000 + i] = 200;
    expect(await codeOf(await raw(dark).png().toBuffer())).toBe('decoded');
  });

  it('refuses what is not an image, and an empty file', async () => {
    expect(await codeOf(Buffer.from('not an image at all, just text'))).toBe('PW_E_IMAGE_FORMAT');
    expect(await codeOf(Buffer.alloc(0))).toBe('PW_E_IMAGE_EMPTY');
  });
});
