// Real images for the ONNX tests: every NDSB fixture JPEG, decoded and prepared by the preprocess
// stage for a member's input size and preparation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { decodeGray } from '../../src/preprocess/decode.js';
import { prepare } from '../../src/preprocess/prepare.js';
import type { PreprocessSpec } from '../../src/types.js';

export const FIXTURES = path.resolve(import.meta.dirname, '..', 'fixtures', 'ndsb');

export function fixtureFiles(): string[] {
  const files: string[] = [];
  for (const cls of readdirSync(FIXTURES).sort()) {
    const dir = path.join(FIXTURES, cls);
    if (statSync(dir).isDirectory()) files.push(...readdirSync(dir).sort().filter((f) => f.endsWith('.jpg')).map((f) => path.join(dir, f)));
  }
  return files;
}

/** The fixture images prepared at `size`: one row-major [count, size, size] Float32Array. */
export async function fixturePixels(size: number, spec: PreprocessSpec, files = fixtureFiles()): Promise<{ count: number; pixels: Float32Array }> {
  const pixels = new Float32Array(files.length * size * size);
  for (const [i, file] of files.entries()) {
    const gray = await decodeGray(readFileSync(file), { maxPixels: 1e8 });
    pixels.set(prepare(gray, size, spec).pixels, i * size * size);
  }
  return { count: files.length, pixels };
}

/** Largest absolute difference between two arrays of the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** A real pino logger whose lines are kept, parsed. */
export function captureLogger(): { logger: import('pino').Logger; lines: { level: number; msg: string; [key: string]: unknown }[] } {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n')) if (text.trim() !== '') lines.push(JSON.parse(text) as (typeof lines)[number]);
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}
