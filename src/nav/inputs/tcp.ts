// NMEA from a TCP server (a navigation multiplexer, often port 10110): connects, reads lines, and
// reconnects after a drop with a delay doubling from 1 s up to nav.tcp.reconnectMaxS.
import { connect, type Socket } from 'node:net';
import { Backoff, LineSplitter, type InputContext, type NavInput } from './lines.js';

/** A connection silent this long is taken as dead and opened again. */
const IDLE_MS = 60_000;

export class TcpInput implements NavInput {
  readonly name: string;
  readonly source: string;
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly backoff: Backoff;

  constructor(
    private readonly host: string,
    private readonly port: number,
    reconnectMaxMs: number,
    private readonly ctx: InputContext,
  ) {
    this.source = `tcp:${host}:${port}`;
    this.name = `nav ${this.source}`;
    this.backoff = new Backoff(reconnectMaxMs);
  }

  /** Starts connecting; never waits for the server (it may be down now and up later). */
  start(): void {
    this.running = true;
    this.open();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): void {
    if (!this.running) return;
    const { handlers } = this.ctx;
    const splitter = new LineSplitter((line) => handlers.line(line, Date.now(), this.source), () => handlers.overflow(this.source));
    const socket = connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.setKeepAlive(true, 10_000);
    socket.setTimeout(IDLE_MS);
    socket.on('connect', () => handlers.state(this.source, true));
    socket.on('data', (chunk: string) => {
      this.backoff.reset();
      splitter.push(chunk);
    });
    socket.on('timeout', () => socket.destroy(new Error(`no data for ${IDLE_MS / 1000} s`)));
    socket.on('error', (err) => handlers.state(this.source, false, err));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      handlers.state(this.source, false);
      if (!this.running) return;
      this.timer = setTimeout(() => this.open(), this.backoff.delay());
      this.timer.unref();
    });
  }
}
