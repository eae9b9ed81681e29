// Plain ustar archives (POSIX.1-1988), enough for member versions: regular files with names of up
// to 255 bytes. Written with gzip when asked; read from any byte stream, gzip or not (told by its
// first two bytes). Anything else in an archive (links, devices, pax headers) is refused.
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';

export interface TarEntry {
  /** Path inside the archive, forward slashes. */
  name: string;
  data: Buffer;
  /** Modification time (default: now). */
  mtime?: Date;
}

/** A malformed or unsupported archive. */
export class TarFormatError extends Error {}

const BLOCK = 512;

function header(entry: TarEntry): Buffer {
  const h = Buffer.alloc(BLOCK);
  const name = Buffer.from(entry.name, 'utf8');
  let prefix = Buffer.alloc(0);
  let rest = name;
  if (name.length > 100) {
    // Split at a slash: up to 155 bytes of prefix, up to 100 of name.
    const cut = entry.name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(entry.name.slice(cut + 1)) > 100) throw new TarFormatError(`Name too long for a ustar archive: ${entry.name}`);
    prefix = Buffer.from(entry.name.slice(0, cut), 'utf8');
    rest = Buffer.from(entry.name.slice(cut + 1), 'utf8');
  }
  rest.copy(h, 0);
  const octal = (value: number, width: number, at: number) => h.write(`${value.toString(8).padStart(width - 1, '0')}\0`, at, 'latin1');
  octal(0o644, 8, 100);
  octal(0, 8, 108);
  octal(0, 8, 116);
  octal(entry.data.length, 12, 124);
  octal(Math.floor((entry.mtime ?? new Date()).getTime() / 1000), 12, 136);
  h.write('        ', 148, 'latin1');
  h.write('0', 156, 'latin1');
  h.write('ustar\u000000', 257, 'latin1');
  prefix.copy(h, 345);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

async function* blocks(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): AsyncGenerator<Buffer> {
  for await (const entry of entries) {
    yield header(entry);
    yield entry.data;
    const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * BLOCK);
}

/**
 * Write `entries` as a tar file, gzipped when `gzip` (default: when the name ends in .gz or
 * .tgz). The file appears whole or not at all (written beside it under a temporary name, then
 * renamed).
 */
export async function writeTar(file: string, entries: Iterable<TarEntry> | AsyncIterable<TarEntry>, options: { gzip?: boolean } = {}): Promise<void> {
  const gzip = options.gzip ?? /\.(t?gz)$/i.test(file);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const out = createWriteStream(tmp);
    const source = Readable.from(blocks(entries));
    await (gzip ? pipeline(source, createGzip(), out) : pipeline(source, out));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Reads exact byte counts from a stream of chunks. */
class ByteReader {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(private readonly it: AsyncIterator<Buffer | Uint8Array | string>) {}

  /** `n` bytes, or null at a clean end of the stream; throws when it ends after fewer. */
  async take(n: number): Promise<Buffer | null> {
    while (this.length < n) {
      const next = await this.it.next();
      if (next.done) break;
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      this.parts.push(chunk);
      this.length += chunk.length;
    }
    if (this.length === 0 && n > 0) return null;
    if (this.length < n) throw new TarFormatError(`The archive ends in the middle of an entry (${this.length} of ${n} bytes): it is truncated.`);
    const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.length);
    const rest = all.subarray(n);
    this.parts = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return all.subarray(0, n);
  }
}

/** The bytes of `input`, gunzipped when they start with gzip's magic number. */
async function* plainBytes(input: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  const it = (Symbol.asyncIterator in input ? input[Symbol.asyncIterator]() : (input as Iterable<Buffer>)[Symbol.iterator]()) as AsyncIterator<Buffer> | Iterator<Buffer>;
  try {
    const first = await it.next();
    if (first.done) return;
    const head = Buffer.from(first.value);
    async function* all(): AsyncGenerator<Buffer> {
      yield head;
      for (;;) {
        const next = await it.next();
        if (next.done) return;
        yield Buffer.from(next.value);
      }
    }
    if (head[0] !== 0x1f || head[1] !== 0x8b) {
      yield* all();
      return;
    }
    const gunzip = createGunzip();
    const piped = pipeline(Readable.from(all()), gunzip);
    piped.catch(() => undefined);
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
      await piped;
    } catch (err) {
      throw new TarFormatError(`The gzip stream is damaged or cut short (${(err as Error).message}).`);
    }
  } finally {
    // Close the source (a file or a download) when the reader stops early.
    await it.return?.();
  }
}

function field(h: Buffer, at: number, width: number): string {
  const raw = h.subarray(at, at + width);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? width : end).toString('utf8');
}

function octalField(h: Buffer, at: number, width: number, what: string): number {
  const text = field(h, at, width).trim();
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`Bad ${what} field in a tar header ("${text}").`);
  return parseInt(text, 8);
}

/**
 * The regular files of a tar archive, in order. Directory entries are skipped; any other kind of
 * entry, a bad header checksum or a truncated archive throws TarFormatError.
 */
export async function* readTar(input: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer>): AsyncGenerator<TarEntry> {
  const bytes = plainBytes(input);
  const reader = new ByteReader(bytes);
  try {
    yield* entries(reader);
  } finally {
    await bytes.return(undefined);
  }
}

async function* entries(reader: ByteReader): AsyncGenerator<TarEntry> {
  for (;;) {
    const h = await reader.take(BLOCK);
    if (h === null) throw new TarFormatError('The archive ends without its end-of-archive blocks: it is truncated.');
    if (h.every((b) => b === 0)) return;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (octalField(h, 148, 8, 'checksum') !== sum) throw new TarFormatError('A tar header fails its checksum: the archive is damaged.');
    if (!field(h, 257, 6).startsWith('ustar')) throw new TarFormatError('Not a ustar archive.');
    const prefix = field(h, 345, 155);
    const name = prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100);
    const size = octalField(h, 124, 12, 'size');
    const type = String.fromCharCode(h[156]!);
    const data = size > 0 ? await reader.take(size) : Buffer.alloc(0);
    if (data === null) throw new TarFormatError(`The archive ends in the middle of ${name}: it is truncated.`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0 && (await reader.take(pad)) === null) throw new TarFormatError(`The archive ends in the middle of ${name}: it is truncated.`);
    if (type === '5') continue;
    if (type !== '0' && type !== '\0') throw new TarFormatError(`${name}: only regular files are accepted in a model archive (entry type "${type}").`);
    yield { name, data, mtime: new Date(octalField(h, 136, 12, 'mtime') * 1000) };
  }
}
