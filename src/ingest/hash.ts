// Content identity: SHA-256 of a file's bytes, streamed.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

export interface FileHash {
  /** Lowercase hex. */
  sha256: string;
  /** Bytes actually read. */
  bytes: number;
}

/** Streams the file through SHA-256. Rejects with the fs error (ENOENT, EACCES, EIO…) if reading fails. */
export async function hashFile(path: string): Promise<FileHash> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      bytes += chunk.length;
      hash.update(chunk);
    }
  });
  return { sha256: hash.digest('hex'), bytes };
}
