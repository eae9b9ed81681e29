// Reading a whole camera frame: its format, size and bit depth checked, decoded to one 8-bit gray
// channel, and refused when nothing can be seen in it (all black or all white). Each refusal is a
// coded error the stage records as the frame's reject (quarantined).
import sharp, { type Metadata } from 'sharp';
import { PlankwatchError } from '../errors.js';

const FORMATS = new Set(['jpeg', 'png', 'tiff']);

/** Pixels at or beyond these levels count as black / white. */
const BLACK = 2;
const WHITE = 253;
/** A frame with at least this fraction of black (or white) pixels is blank. */
const BLANK_FRACTION = 0.999;

export interface CameraFrameImage {
  gray: Uint8Array;
  width: number;
  height: number;
  format: string;
  bitDepth: number;
}

/**
 * Decodes a camera frame. Throws PlankwatchError: PW_E_IMAGE_EMPTY, PW_E_IMAGE_FORMAT,
 * PW_E_IMAGE_TOO_LARGE, PW_E_IMAGE_CORRUPT (truncated or corrupt), PW_E_FRAME_BIT_DEPTH (not 8
 * bits per sample), PW_E_FRAME_BLANK (all black or all white).
 */
export async function decodeCameraFrame(bytes: Buffer, maxPixels: number): Promise<CameraFrameImage> {
  if (bytes.length === 0) throw new PlankwatchError('PW_E_IMAGE_EMPTY', 'The file has 0 bytes.');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    // A TIFF cut short loses the directory at its end: its signature still says what it was.
    if (/unsupported image format/i.test(reason) && !signature(bytes)) throw new PlankwatchError('PW_E_IMAGE_FORMAT', 'The content is not a recognised image format.', { cause: err });
    throw new PlankwatchError('PW_E_IMAGE_CORRUPT', `Header unreadable (truncated or corrupt): ${reason}`, { cause: err });
  }
  const format = meta.format ?? 'unknown';
  if (!FORMATS.has(format)) throw new PlankwatchError('PW_E_IMAGE_FORMAT', `Format "${format}" is not JPEG, PNG or TIFF.`);
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width <= 0 || height <= 0) throw new PlankwatchError('PW_E_IMAGE_CORRUPT', `Invalid dimensions ${width}x${height}.`);
  if (width * height > maxPixels) throw new PlankwatchError('PW_E_IMAGE_TOO_LARGE', `${width}x${height} = ${width * height} pixels exceeds ingest.maxPixels = ${maxPixels}.`);
  const bitDepth = bitsOf(meta);
  if (bitDepth !== 8) throw new PlankwatchError('PW_E_FRAME_BIT_DEPTH', `The frame has ${bitDepth} bits per sample (${meta.depth}); 8 are needed.`);
  let gray: Uint8Array;
  try {
    // A camera's 8-bit gray frame (one channel, no alpha) only needs decoding: half the time of
    // the flatten and gray conversion, which give the same pixels for it.
    const decoder = sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels });
    const plainGray = meta.channels === 1 && !meta.hasAlpha;
    const { data, info } = await (plainGray ? decoder.toColourspace('b-w') : decoder.flatten({ background: '#ffffff' }).grayscale()).raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 1 || data.length !== width * height) throw new PlankwatchError('PW_E_IMAGE_CORRUPT', `Decoded ${data.length} bytes in ${info.channels} channel(s) for ${width}x${height}.`);
    gray = new Uint8Array(data.buffer, data.byteOffset, data.length);
  } catch (err) {
    if (err instanceof PlankwatchError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new PlankwatchError('PW_E_IMAGE_CORRUPT', `Pixel data unreadable (truncated or corrupt): ${reason}`, { cause: err });
  }
  const blank = blankness(gray);
  if (blank) throw new PlankwatchError('PW_E_FRAME_BLANK', `The frame is all ${blank} (${width}x${height}).`);
  return { gray, width, height, format, bitDepth };
}

/** The format a file's first bytes announce (JPEG, PNG, TIFF), or undefined. */
function signature(bytes: Buffer): string | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (bytes.length >= 4 && (bytes.subarray(0, 4).equals(Buffer.from('II*\0', 'latin1')) || bytes.subarray(0, 4).equals(Buffer.from('MM\0*', 'latin1')))) return 'tiff';
  return undefined;
}

function bitsOf(meta: Metadata): number {
  switch (meta.depth) {
    case 'uchar':
    case 'char':
      return meta.bitsPerSample && meta.bitsPerSample < 8 ? meta.bitsPerSample : 8;
    case 'ushort':
    case 'short':
      return 16;
    case 'uint':
    case 'int':
    case 'float':
      return 32;
    default:
      return meta.bitsPerSample ?? 64;
  }
}

/**
 * 'black' or 'white' when nearly every pixel is, else undefined. Stops as soon as enough pixels are
 * neither black nor white (a few thousand in a frame with anything in it).
 */
function blankness(gray: Uint8Array): 'black' | 'white' | undefined {
  const n = gray.length;
  const need = BLANK_FRACTION * n;
  let notBlack = 0;
  let notWhite = 0;
  for (let i = 0; i < n; i++) {
    const v = gray[i]!;
    if (v > BLACK) notBlack++;
    if (v < WHITE) notWhite++;
    if (n - notBlack < need && n - notWhite < need) return undefined;
  }
  if (n - notBlack >= need) return 'black';
  if (n - notWhite >= need) return 'white';
  return undefined;
}
