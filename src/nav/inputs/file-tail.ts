// NMEA appended to a logged file: read from where it was left, every 250 ms. A file truncated or
// replaced (rotation) is read again from its start; a missing file is waited for.
import { open, stat } from 'node:fs/promises';
import { LineSplitter, type InputContext, type NavInput } from './lines.js';

const POLL_MS = 250;
const CHUNK = 64 * 1024;

export class FileTailInput implements NavInput {
  readonly name: string;
  readonly source: string;
  private timer: NodeJS.Timeout | undefined;
  private offset = -1;
  private ino = -1;
  private up: boolean | undefined;
  private reading: Promise<void> | undefined;
  private readonly splitter: LineSplitter;

  constructor(
    private readonly path: string,
    private readonly fromStart: boolean,
    private readonly ctx: InputContext,
  ) {
    this.source = `file:${path}`;
    this.name = `nav ${this.source}`;
    this.splitter = new LineSplitter((line) => ctx.handlers.line(line, Date.now(), this.source), () => ctx.handlers.overflow(this.source));
  }

  async start(): Promise<void> {
    await this.poll(true);
    this.timer = setInterval(() => {
      this.reading ??= this.poll(false).finally(() => (this.reading = undefined));
    }, POLL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.reading;
  }

  private setUp(up: boolean, err?: unknown): void {
    if (this.up === up) return;
    this.up = up;
    this.ctx.handlers.state(this.source, up, err);
  }

  private async poll(first: boolean): Promise<void> {
    let st;
    try {
      st = await stat(this.path);
    } catch (err) {
      this.setUp(false, err);
      return;
    }
    if (st.ino !== this.ino || st.size < this.offset) {
      // First sight, rotation or truncation: from the start, except the first sight when following.
      this.offset = first && !this.fromStart ? st.size : 0;
      this.ino = st.ino;
      this.splitter.reset();
    }
    this.setUp(true);
    if (st.size <= this.offset) return;
    const fh = await open(this.path, 'r').catch((err: unknown) => {
      this.setUp(false, err);
      return undefined;
    });
    if (!fh) return;
    try {
      const buf = Buffer.alloc(CHUNK);
      while (this.offset < st.size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, st.size - this.offset), this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.splitter.push(buf.toString('latin1', 0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }
}
