// Shared by the inputs: what an input reports, and bytes cut into lines.
import type { Logger } from '../../log.js';
import type { Part } from '../../types.js';

export interface InputHandlers {
  /** One line as received (without its end of line). */
  line(line: string, receivedAt: number, source: string): void;
  /** A line too long to be a sentence (garbage on the link). */
  overflow(source: string): void;
  /** The input is up (true) or down (false); called on each change. */
  state(source: string, up: boolean, err?: unknown): void;
}

/** One navigation input. */
export interface NavInput extends Part {
  readonly source: string;
}

export interface InputContext {
  handlers: InputHandlers;
  logger: Logger;
}

/** Longest line kept while waiting for its end; a longer one is dropped whole. */
const MAX_BUFFER = 4096;

/** Cuts a byte stream into lines at LF, CR LF or CR. */
export class LineSplitter {
  private rest = '';
  private dropping = false;

  constructor(
    private readonly emit: (line: string) => void,
    private readonly overflow: () => void,
  ) {}

  push(chunk: string): void {
    const text = this.rest + chunk;
    const parts = text.split(/\r\n|\n|\r/);
    this.rest = parts.pop() ?? '';
    for (const p of parts) {
      if (this.dropping) {
        this.dropping = false;
        continue;
      }
      this.emit(p);
    }
    if (this.rest.length > MAX_BUFFER) {
      this.rest = '';
      if (!this.dropping) this.overflow();
      this.dropping = true;
    }
  }

  /** Forgets a partial line (after a reconnect). */
  reset(): void {
    this.rest = '';
    this.dropping = false;
  }
}

/** Delays that double from 1 s up to maxMs. */
export class Backoff {
  private next = 1000;
  constructor(private readonly maxMs: number) {}
  delay(): number {
    const d = this.next;
    this.next = Math.min(this.maxMs, this.next * 2);
    return d;
  }
  reset(): void {
    this.next = 1000;
  }
}
