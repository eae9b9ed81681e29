// A cheap look at a file's last bytes: JPEG and PNG files end with a marker that a half-written
// file cannot end with (JPEG's end-of-image marker FF D9 never occurs inside entropy-coded data;
// PNG's IEND chunk comes last), so a file that ends with one and has not grown since the previous
// poll can be taken at once instead of after the full stableMs.
import { openRegular } from './hash.js';

const PNG_IEND = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/** True when the file at `path`, of `size` bytes, ends like a complete JPEG or PNG. */
export async function endsComplete(path: string, size: number): Promise<boolean> {
  if (size < 16) return false;
  const handle = await openRegular(path); // never through a link, never blocking on a FIFO
  try {
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(12);
    await handle.read(head, 0, 4, 0);
    await handle.read(tail, 0, 12, size - 12);
    if (head[0] === 0xff && head[1] === 0xd8) return tail[10] === 0xff && tail[11] === 0xd9;
    if (head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47) return tail.equals(PNG_IEND);
    return false;
  } finally {
    await handle.close();
  }
}
