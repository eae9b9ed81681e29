// Writing a zip file (yazl: streaming, Zip64 for archives past 4 GiB or 65,535 entries).
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import yazl from 'yazl';

/** A zip being written to `path` (under a temporary name until `finish()`). */
export class ZipWriter {
  private readonly path: string;
  private readonly zip = new yazl.ZipFile();
  private done: Promise<void> | undefined;
  private out: WriteStream | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const out = createWriteStream(`${this.path}.part`);
    this.out = out;
    this.done = new Promise<void>((resolve, reject) => {
      out.on('close', () => resolve());
      out.on('error', reject);
      this.zip.outputStream.on('error', reject);
    });
    this.zip.outputStream.pipe(out);
  }

  /** Adds a file; `compress: false` for images that are already compressed (JPEG). */
  add(name: string, data: Buffer | string, compress = true): void {
    this.zip.addBuffer(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, name, { compress, mtime: new Date(0) });
  }

  /** Writes the central directory, waits for the file, then gives it its final name. */
  async finish(): Promise<void> {
    this.zip.end();
    await this.done;
    await rename(`${this.path}.part`, this.path);
  }

  /** Gives up: closes and removes the temporary file, so no partial or empty zip is left behind. */
  async abort(): Promise<void> {
    const out = this.out;
    if (out && !out.closed) {
      this.zip.outputStream.unpipe(out);
      out.destroy();
    }
    await this.done?.catch(() => undefined); // settles when the file is closed
    await rm(`${this.path}.part`, { force: true });
  }
}
