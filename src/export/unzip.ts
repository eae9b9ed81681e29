// Reading a zip's entries (central directory; stored or deflated; Zip64 sizes and offsets), for the
// archive validator. The whole file is read into memory: archives checked here are exports.
import { readFile } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import { PlankwatchError } from '../errors.js';

/** Entry name → its bytes, read lazily. */
export interface ZipEntries {
  names: string[];
  has(name: string): boolean;
  read(name: string): Buffer;
}

function bad(path: string, why: string): PlankwatchError {
  return new PlankwatchError('PW_E_EXPORT_INVALID', `${path} is not a readable zip: ${why}.`);
}

export async function readZip(path: string): Promise<ZipEntries> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new PlankwatchError('PW_E_EXPORT_INVALID', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw bad(path, 'no end of central directory');
  let count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  // Zip64: the locator sits just before the end record and points at the Zip64 end record.
  if ((count === 0xffff || p === 0xffffffff) && eocd >= 20 && buf.readUInt32LE(eocd - 20) === 0x07064b50) {
    const z = Number(buf.readBigUInt64LE(eocd - 12));
    count = Number(buf.readBigUInt64LE(z + 32));
    p = Number(buf.readBigUInt64LE(z + 48));
  }
  const entries = new Map<string, { method: number; size: number; offset: number }>();
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw bad(path, 'a central directory entry is damaged');
    const method = buf.readUInt16LE(p + 10);
    let compressed = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let offset = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    const uncompressed = buf.readUInt32LE(p + 24);
    // Zip64 extra field: the 8-byte values present are those whose 4-byte field is 0xffffffff.
    let e = p + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (uncompressed === 0xffffffff) q += 8;
        if (compressed === 0xffffffff) {
          compressed = Number(buf.readBigUInt64LE(q));
          q += 8;
        }
        if (offset === 0xffffffff) offset = Number(buf.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    entries.set(name, { method, size: compressed, offset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return {
    names: [...entries.keys()],
    has: (name) => entries.has(name),
    read(name: string): Buffer {
      const en = entries.get(name);
      if (!en) throw bad(path, `no entry ${name}`);
      const local = en.offset;
      if (buf.readUInt32LE(local) !== 0x04034b50) throw bad(path, `the local header of ${name} is damaged`);
      const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
      const data = buf.subarray(start, start + en.size);
      if (en.method === 0) return Buffer.from(data);
      if (en.method === 8) return inflateRawSync(data);
      throw bad(path, `${name} uses compression method ${en.method}`);
    },
  };
}
