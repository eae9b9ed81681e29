// Decoding with sharp: format check, pixel limit, and conversion to one 8-bit gray channel (and,
// for members that read three channels, the colour).
import sharp from 'sharp';
import { PlankwatchError } from '../errors.js';

const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'tiff']);

/** One channel, 8 bits, row-major; with `colour`, the decoder was asked for the colour too. */
export interface GrayImage {
  gray: Uint8Array;
  width: number;
  height: number;
  format: string;
  /** R, G, B interleaved, 8 bits each (width · height · 3), when decoded with `colour`. */
  rgb?: Uint8Array;
}

export interface DecodeOptions {
  /** Images with more pixels than this are rejected (PW_E_IMAGE_TOO_LARGE). */
  maxPixels: number;
  /** Gray level transparent pixels are flattened onto (default 255, a bright-field background). */
  flatten?: number;
  /** Also decode the colour (for members that read three channels); a gray file gives R = G = B. */
  colour?: boolean;
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
    if (!options.colour) return { gray, width: info.width, height: info.height, format };
    const colour = await sharp(buffer, { failOn: 'truncated', limitInputPixels: options.maxPixels })
      .flatten({ background: flattenColour(options.flatten ?? 255) })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { gray, width: info.width, height: info.height, format, rgb: toRgb(colour.data, colour.info.channels) };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PlankwatchError('PW_E_IMAGE_CORRUPT', `Pixel data unreadable: ${reason}`, { cause: err });
  }
}

function flattenColour(level: number): { r: number; g: number; b: number } {
  return { r: level, g: level, b: level };
}

/** Interleaved R, G, B from sharp's raw output (1 channel: repeated; 2 or 4: the alpha left out). */
function toRgb(data: Buffer, channels: number): Uint8Array {
  const n = data.length / channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const o = i * channels;
    const colour = channels >= 3;
    out[i * 3] = data[o]!;
    out[i * 3 + 1] = data[colour ? o + 1 : o]!;
    out[i * 3 + 2] = data[colour ? o + 2 : o]!;
  }
  return out;
}

function firstChannel(data: Buffer, channels: number): Uint8Array {
  const out = new Uint8Array(data.length / channels);
  for (let i = 0; i < out.length; i++) out[i] = data[i * channels]!;
  return out;
}
