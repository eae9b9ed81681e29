// Decoding with sharp: format check, pixel limit, and conversion to one 8-bit gray channel.
import sharp from 'sharp';
import { PlankwatchError } from '../errors.js';

const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'tiff']);

/** One channel, 8 bits, row-major. */
export interface GrayImage {
  gray: Uint8Array;
  width: number;
  height: number;
  format: string;
}

export interface DecodeOptions {
  /** Images with more pixels than this are rejected (PW_E_IMAGE_TOO_LARGE). */
  maxPixels: number;
  /** Gray level transparent pixels are flattened onto (default 255, a bright-field background). */
  flatten?: number;
}

/**
 * Decode a JPEG, PNG or TIFF (gray or colour, with or without alpha) to one gray channel.
 * Throws PlankwatchError with PW_E_IMAGE_EMPTY, PW_E_IMAGE_FORMAT, PW_E_IMAGE_TOO_LARGE or
 * PW_E_IMAGE_CORRUPT; never anything else for bad input.
 */
export async function decodeGray(buffer: Buffer, options: DecodeOptions): Promise<GrayImage> {
  if (buffer.length === 0) throw new PlankwatchError('PW_E_IMAGE_EMPTY', 'The file has 0 bytes.');
  let format: string | undefined;
  let width = 0;
  let height = 0;
  try {
    const meta = await sharp(buffer, { limitInputPixels: false }).metadata();
    format = meta.format;
    width = meta.width ?? 0;
    height = meta.height ?? 0;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (/unsupported image format/i.test(reason)) {
      throw new PlankwatchError('PW_E_IMAGE_FORMAT', 'The content is not a recognised image format.', { cause: err });
    }
    throw new PlankwatchError('PW_E_IMAGE_CORRUPT', `Header unreadable: ${reason}`, { cause: err });
  }
  if (!format || !ACCEPTED_FORMATS.has(format)) {
    throw new PlankwatchError('PW_E_IMAGE_FORMAT', `Format "${format ?? 'unknown'}" is not JPEG, PNG or TIFF.`);
  }
  if (width <= 0 || height <= 0) {
    throw new PlankwatchError('PW_E_IMAGE_CORRUPT', `Invalid dimensions ${width}x${height}.`);
  }
  if (width * height > options.maxPixels) {
    throw new PlankwatchError(
      'PW_E_IMAGE_TOO_LARGE',
      `${width}x${height} = ${width * height} pixels exceeds ingest.maxPixels = ${options.maxPixels}.`,
    );
  }
  try {
    const { data, info } = await sharp(buffer, { failOn: 'truncated', limitInputPixels: options.maxPixels })
      .flatten({ background: flattenColour(options.flatten ?? 255) })
      .grayscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const gray = info.channels === 1 ? new Uint8Array(data.buffer, data.byteOffset, data.length) : firstChannel(data, info.channels);
    return { gray, width: info.width, height: info.height, format };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PlankwatchError('PW_E_IMAGE_CORRUPT', `Pixel data unreadable: ${reason}`, { cause: err });
  }
}

function flattenColour(level: number): { r: number; g: number; b: number } {
  return { r: level, g: level, b: level };
}

function firstChannel(data: Buffer, channels: number): Uint8Array {
  const out = new Uint8Array(data.length / channels);
  for (let i = 0; i < out.length; i++) out[i] = data[i * channels]!;
  return out;
}
