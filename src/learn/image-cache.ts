// Decoded and prepared training images, one byte per pixel at the member's input size, through
// exactly the inference path (decodeGray, the camera's canonical form, prepare), cached under .cache/ so that later runs
// start in seconds. A cached byte b stands for the prepared float b / 255, which is exactly what
// `prepare` produced (its outputs are k / 255 for an integer k).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readVerified } from '../ingest/index.js';
import { canonicalImage, flattenLevel, NDSB_CAMERA, type CameraProfile } from '../preprocess/camera.js';
import { decodeGray } from '../preprocess/decode.js';
import { prepare } from '../preprocess/prepare.js';
import type { PreprocessSpec } from '../types.js';
import { copyInto } from './augment.js';
import type { Dataset, LabelledImage } from './dataset.js';

export interface ImageTable {
  size: number;
  /** count · size · size · channels bytes, image i at offset i · size² · channels (channels interleaved). */
  pixels: Uint8Array;
  /** Absent: 1 (gray); 3: R, G, B. */
  channels?: 1 | 3;
  /** Relative path of each row. */
  rels: string[];
}

const MAX_PIXELS = 64_000_000;

/** Bytes of one image of `table`: size² · channels. */
export function imageBytes(table: Pick<ImageTable, 'size' | 'channels'>): number {
  return table.size * table.size * (table.channels ?? 1);
}

export function cacheDir(): string {
  return process.env.PLANKWATCH_CACHE_DIR ?? '.cache';
}

/**
 * Prepare one image as the inference path would, quantised to bytes. With `sha256` the file must
 * still hold exactly those bytes (PW_E_IMAGE_MISMATCH otherwise): what is trained on is the frame
 * that was labelled, even if the file changed since it was looked up.
 */
export async function prepareBytes(file: string, size: number, spec: PreprocessSpec, sha256?: string, camera: CameraProfile = NDSB_CAMERA, channels: 1 | 3 = 1): Promise<Uint8Array> {
  const bytes = sha256 === undefined ? await readFile(file) : await readVerified(file, sha256);
  const decoded = await decodeGray(bytes, { maxPixels: MAX_PIXELS, flatten: flattenLevel(camera.polarity), colour: channels === 3 });
  const { pixels } = prepare(canonicalImage(decoded, camera.polarity).image, size, spec, channels);
  const out = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = Math.round(pixels[i]! * 255);
  return out;
}

/**
 * Load the prepared bytes of `items` at `size`, from the cache when it holds them, else by
 * decoding (concurrency 4; sharp works on its own threads) and then caching.
 */
export async function loadImageTable(
  items: LabelledImage[],
  size: number,
  spec: PreprocessSpec,
  options: { cache?: boolean; onProgress?: (done: number, total: number) => void; camera?: CameraProfile; channels?: 1 | 3 } = {},
): Promise<ImageTable> {
  const camera = options.camera ?? NDSB_CAMERA;
  const channels = options.channels ?? 1;
  // A bright-field camera's gray images are prepared as they always were: the same cache entry.
  const polarity = camera.polarity === 'bright-field' ? {} : { polarity: camera.polarity, canonical: 2 };
  const colour = channels === 3 ? { channels } : {};
  const key = createHash('sha256')
    .update(JSON.stringify({ v: 1, size, spec, ...polarity, ...colour, items: items.map((i) => [i.rel, i.bytes]) }))
    .digest('hex')
    .slice(0, 24);
  const file = path.join(cacheDir(), 'images', `${key}-${size}.u8`);
  const rels = items.map((i) => i.rel);
  const one = imageBytes({ size, channels });
  const shape = channels === 3 ? { size, channels } : { size };
  if (options.cache !== false && existsSync(file)) {
    const buf = await readFile(file);
    if (buf.length === items.length * one) return { ...shape, pixels: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), rels };
  }
  const pixels = new Uint8Array(items.length * one);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      pixels.set(await prepareBytes(items[i]!.file, size, spec, items[i]!.sha256, camera, channels), i * one);
      done++;
      if (done % 500 === 0) options.onProgress?.(done, items.length);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (options.cache !== false) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.tmp`, pixels);
    await rename(`${file}.tmp`, file);
  }
  return { ...shape, pixels, rels };
}

/** Rows of `table` (covering `dataset.items` in order) for the given relative paths. */
export function subTable(dataset: Dataset, table: ImageTable, rels: string[]): { table: ImageTable; labels: Int32Array; classes: string[] } {
  const index = new Map(dataset.items.map((item, i) => [item.rel, i]));
  const classIndex = new Map(dataset.classes.map((c, i) => [c, i]));
  const s2 = imageBytes(table);
  const pixels = new Uint8Array(rels.length * s2);
  const labels = new Int32Array(rels.length);
  rels.forEach((rel, r) => {
    const i = index.get(rel);
    if (i === undefined) throw new Error(`Split names ${rel}, which is not in the data.`);
    pixels.set(table.pixels.subarray(i * s2, (i + 1) * s2), r * s2);
    labels[r] = classIndex.get(dataset.items[i]!.label)!;
  });
  return { table: { size: table.size, ...(table.channels === 3 ? { channels: 3 as const } : {}), pixels, rels }, labels, classes: dataset.classes };
}

/** Rows `start`..`start + count` of a table as the network's input values (each byte / 255), for one batch. */
export function tableRows(table: ImageTable, start: number, count: number): Float32Array {
  const s2 = imageBytes(table);
  const out = new Float32Array(count * s2);
  copyInto(table.pixels.subarray(start * s2, (start + count) * s2), out);
  return out;
}
