// NMEA on a serial line, through the serialport package (its N-API binding ships prebuilt for
// linux x64 and arm64). Reopened with a growing delay when the device goes away (a USB adapter
// unplugged) or cannot be opened yet.
import { Backoff, LineSplitter, type InputContext, type NavInput } from './lines.js';

interface Port {
  on(event: 'data', fn: (chunk: Buffer) => void): void;
  on(event: 'close' | 'error', fn: (err?: Error) => void): void;
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): void;
  isOpen: boolean;
}

export class SerialInput implements NavInput {
  readonly name: string;
  readonly source: string;
  private port: Port | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly backoff: Backoff;

  constructor(
    private readonly path: string,
    private readonly baudRate: number,
    reconnectMaxMs: number,
    private readonly ctx: InputContext,
  ) {
    this.source = `serial:${path}`;
    this.name = `nav ${this.source}`;
    this.backoff = new Backoff(reconnectMaxMs);
  }

  start(): void {
    this.running = true;
    void this.open();
  }

  stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    const port = this.port;
    this.port = undefined;
    if (!port?.isOpen) return Promise.resolve();
    return new Promise((resolve) => port.close(() => resolve()));
  }

  private retry(err: unknown): void {
    this.ctx.handlers.state(this.source, false, err);
    if (!this.running) return;
    this.timer = setTimeout(() => void this.open(), this.backoff.delay());
    this.timer.unref();
  }

  private async open(): Promise<void> {
    if (!this.running) return;
    let SerialPort: new (o: { path: string; baudRate: number; autoOpen: boolean }) => Port;
    try {
      ({ SerialPort } = (await import('serialport')) as unknown as { SerialPort: typeof SerialPort });
    } catch (err) {
      this.retry(err);
      return;
    }
    const { handlers } = this.ctx;
    const port = new SerialPort({ path: this.path, baudRate: this.baudRate, autoOpen: false });
    const splitter = new LineSplitter((line) => handlers.line(line, Date.now(), this.source), () => handlers.overflow(this.source));
    port.open((err) => {
      if (err) {
        this.retry(err);
        return;
      }
      if (!this.running) {
        port.close();
        return;
      }
      this.port = port;
      handlers.state(this.source, true);
    });
    port.on('data', (chunk) => {
      this.backoff.reset();
      splitter.push(chunk.toString('latin1'));
    });
    port.on('error', (err) => handlers.state(this.source, false, err));
    port.on('close', (err) => {
      if (this.port !== port) return;
      this.port = undefined;
      this.retry(err ?? new Error('port closed'));
    });
  }
}
