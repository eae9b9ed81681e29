// The capture time an image carries in its EXIF: DateTimeOriginal, with SubSecTimeOriginal and
// OffsetTimeOriginal when present (UTC when no offset is given: cameras on research vessels are
// set to UTC). Reads only the first 128 KiB of a JPEG or TIFF file; anything unexpected is null.
import { open } from 'node:fs/promises';

const HEAD = 128 * 1024;

/** The EXIF capture instant (ms since epoch) of the file, or null. Never throws. */
export async function exifCaptureTime(path: string): Promise<number | null> {
  let buf: Buffer;
  try {
    const fh = await open(path, 'r');
    try {
      const b = Buffer.alloc(HEAD);
      const { bytesRead } = await fh.read(b, 0, HEAD, 0);
      buf = b.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
  try {
    return captureTimeOf(buf);
  } catch {
    return null;
  }
}

/** The EXIF capture instant in the head of a JPEG or TIFF file, or null. */
export function captureTimeOf(buf: Buffer): number | null {
  const tiff = tiffStart(buf);
  if (tiff < 0) return null;
  const le = buf.toString('latin1', tiff, tiff + 2) === 'II';
  const u16 = (o: number): number => (le ? buf.readUInt16LE(tiff + o) : buf.readUInt16BE(tiff + o));
  const u32 = (o: number): number => (le ? buf.readUInt32LE(tiff + o) : buf.readUInt32BE(tiff + o));
  const entries = (ifd: number): Map<number, { type: number; count: number; at: number }> => {
    const out = new Map<number, { type: number; count: number; at: number }>();
    const n = u16(ifd);
    for (let i = 0; i < n; i++) {
      const e = ifd + 2 + i * 12;
      const count = u32(e + 4);
      out.set(u16(e), { type: u16(e + 2), count, at: count <= 4 ? e + 8 : u32(e + 8) });
    }
    return out;
  };
  const ascii = (m: Map<number, { type: number; count: number; at: number }>, tag: number): string | null => {
    const e = m.get(tag);
    if (!e || e.type !== 2) return null;
    return buf.toString('latin1', tiff + e.at, tiff + e.at + e.count).replace(/\0.*$/s, '').trim();
  };
  const ifd0 = entries(u32(4));
  const exifPointer = ifd0.get(0x8769);
  if (!exifPointer) return null;
  const exif = entries(u32(exifPointer.at));
  const original = ascii(exif, 0x9003);
  const m = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(original ?? '');
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  let t = Date.UTC(y, mo - 1, d, h, mi, s);
  const sub = ascii(exif, 0x9291);
  if (sub && /^\d+$/.test(sub)) t += Math.round(Number(`0.${sub}`) * 1000);
  const offset = /^([+-])(\d{2}):(\d{2})$/.exec(ascii(exif, 0x9011) ?? '');
  if (offset) t -= (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) * 60_000;
  return Number.isFinite(t) ? t : null;
}

/** Offset of the TIFF header: the file itself (TIFF) or inside the JPEG APP1 "Exif" segment. */
function tiffStart(buf: Buffer): number {
  const head = buf.toString('latin1', 0, 4);
  if (head === 'II*\0' || head === 'MM\0*') return 0;
  if (buf[0] !== 0xff || buf[1] !== 0xd8) return -1;
  let o = 2;
  while (o + 4 <= buf.length && buf[o] === 0xff) {
    const marker = buf[o + 1]!;
    const len = buf.readUInt16BE(o + 2);
    if (marker === 0xe1 && buf.toString('latin1', o + 4, o + 10) === 'Exif\0\0') return o + 10;
    if (marker === 0xda) return -1; // image data: no EXIF before it
    o += 2 + len;
  }
  return -1;
}
