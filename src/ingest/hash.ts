// Content identity: SHA-256 of a file's bytes, streamed; and the one way image files are opened.
// Every image read goes through `openRegular`: the path is lstat'ed first and opened with
// O_NOFOLLOW | O_NONBLOCK, so a symbolic link is never followed (ELOOP) and a FIFO never blocks a
// read waiting for its writer; anything that is not a regular file is refused with a coded error.
import { createHash } from 'node:crypto';
import { constants as fsc, type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { PlankwatchError } from '../errors.js';

export interface FileHash {
  /** Lowercase hex. */
  sha256: string;
  /** Bytes actually read. */
  bytes: number;
}

/** Read only, never through a link at the last component, never waiting on a FIFO's writer. */
const READ_FLAGS = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK;

/** What kind of special file `st` is, in words for a log line. */
export function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a folder';
  return 'a regular file';
}

/**
 * The coded error for a path whose lstat is not a regular file: PW_E_IMAGE_LINK for a symbolic
 * link, PW_E_IMAGE_SPECIAL for anything else (FIFO, socket, device, folder); undefined for a file.
 */
export function notRegular(path: string, st: Stats): PlankwatchError | undefined {
  if (st.isFile()) return undefined;
  const code = st.isSymbolicLink() ? 'PW_E_IMAGE_LINK' : 'PW_E_IMAGE_SPECIAL';
  return new PlankwatchError(code, `${path} is ${kindOf(st)}, not a regular file.`);
}

/**
 * Opens `path` for reading only if it is a regular file, without following a link and without
 * blocking on a FIFO. Rejects with PlankwatchError PW_E_IMAGE_LINK or PW_E_IMAGE_SPECIAL when it is
 * not a regular file (also when it was swapped for one between the lstat and the open), else with
 * the fs error (ENOENT, EACCES, EIO…).
 */
export async function openRegular(path: string): Promise<FileHandle> {
  const before = await lstat(path);
  const refused = notRegular(path, before);
  if (refused) throw refused;
  let handle: FileHandle;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new PlankwatchError('PW_E_IMAGE_LINK', `${path} became a symbolic link while being opened.`, { cause: err });
    throw err;
  }
  try {
    const st = await handle.stat();
    const swapped = notRegular(path, st);
    if (swapped) throw swapped;
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Streams the file through SHA-256. Rejects with PW_E_IMAGE_LINK / PW_E_IMAGE_SPECIAL when `path`
 * is not a regular file (see `openRegular`), else with the fs error if reading fails.
 */
export async function hashFile(path: string): Promise<FileHash> {
  const handle = await openRegular(path);
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(handle.createReadStream(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      bytes += chunk.length;
      hash.update(chunk);
    }
  });
  return { sha256: hash.digest('hex'), bytes };
}

/** SHA-256 of bytes in memory, lowercase hex. */
export function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The whole file, only if it is a regular file (never through a link, never a FIFO) whose SHA-256
 * is `sha256`. Rejects with PW_E_IMAGE_MISMATCH when the bytes differ, PW_E_IMAGE_LINK or
 * PW_E_IMAGE_SPECIAL when it is not a regular file, else with the fs error.
 */
export async function readVerified(path: string, sha256: string): Promise<Buffer> {
  const handle = await openRegular(path);
  let bytes: Buffer;
  try {
    bytes = await handle.readFile();
  } finally {
    await handle.close();
  }
  const found = sha256Of(bytes);
  if (found !== sha256) throw new PlankwatchError('PW_E_IMAGE_MISMATCH', `${path} holds bytes with SHA-256 ${found}, not ${sha256}.`);
  return bytes;
}
