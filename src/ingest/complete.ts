// A cheap look at a file's bytes: JPEG and PNG files end with a marker that a half-written file
// cannot end with (JPEG's end-of-image marker FF D9 never occurs inside entropy-coded data; PNG's
// IEND chunk comes last), so a file that ends with one can be taken at once instead of after the
// full stableMs. A JPEG's header segments can hold a whole thumbnail JPEG, whose own FF D9 a
// paused writer may have just written: a JPEG counts as complete only when its header segments
// lead to its start-of-scan marker before the end.
import type { FileHandle } from 'node:fs/promises';
import { openRegular } from './hash.js';

const PNG_IEND = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/** Bytes read from the start at once; header segments beyond them are read one by one. */
const HEAD_BYTES = 4096;
/** Most markers walked before the start of scan (real files have about ten). */
const MAX_MARKERS = 512;

/** True when the file at `path`, of `size` bytes, ends like a complete JPEG or PNG. */
export async function endsComplete(path: string, size: number): Promise<boolean> {
  if (size < 16) return false;
  const handle = await openRegular(path); // never through a link, never blocking on a FIFO
  try {
    const head = Buffer.alloc(Math.min(size, HEAD_BYTES));
    const tail = Buffer.alloc(12);
    await handle.read(head, 0, head.length, 0);
    await handle.read(tail, 0, 12, size - 12);
    if (head[0] === 0xff && head[1] === 0xd8) return tail[10] === 0xff && tail[11] === 0xd9 && (await scanBeforeEnd(handle, head, size));
    if (head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47) return tail.equals(PNG_IEND);
    return false;
  } finally {
    await handle.close();
  }
}

/**
 * Walks a JPEG's header segments from its start-of-image marker: true when they lead to a whole
 * start-of-scan header that ends before the file's last two bytes (its end-of-image marker).
 */
async function scanBeforeEnd(handle: FileHandle, head: Buffer, size: number): Promise<boolean> {
  const at = Buffer.alloc(4);
  let pos = 2;
  for (let n = 0; n < MAX_MARKERS && pos + 4 <= size - 2; n++) {
    if (pos + 4 <= head.length) head.copy(at, 0, pos, pos + 4);
    else await handle.read(at, 0, 4, pos);
    if (at[0] !== 0xff) return false; // not a segment boundary: not a JPEG this walk understands
    const marker = at[1]!;
    if (marker === 0xff) {
      pos += 1; // fill byte before a marker
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      pos += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9) return false; // an end of image before any scan
    const end = pos + 2 + at.readUInt16BE(2);
    if (marker === 0xda) return end <= size - 2;
    pos = end;
  }
  return false;
}
