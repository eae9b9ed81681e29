// A fault-injecting TCP proxy to stand between ship and shore broker in tests and `npm run bench`
// (these machines' kernel has no netem). Per direction: added latency, a throughput cap (token
// bucket, like a satellite modem), and on demand: connections reset mid-stream, reset after N bytes,
// and outages during which connections are refused. The same code path serves outages of seconds
// in CI and of hours at sea; only the durations differ.
import net from 'node:net';

export interface FaultProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Listening port on 127.0.0.1 (0 picks a free one). */
  port?: number;
  /** Added one-way delay, each direction (300 → 600 ms round trip). */
  latencyMs?: number;
  /** Throughput cap per direction, bytes per second (8000 = 64 kbit/s); 0: none. */
  bytesPerSecond?: number;
  /** Reset every connection once it has carried this many bytes ship→shore; 0: never. */
  resetAfterBytes?: number;
}

export interface FaultProxyStats {
  connections: number;
  refused: number;
  resets: number;
  bytesUp: number;
  bytesDown: number;
}

const CHUNK = 1024;
const HIGH_WATER = 32 * 1024;

/** One direction of one connection: serialise at the capped rate, then delay. */
class Lane {
  private nextFree = 0;
  private queued = 0;
  private closed = false;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly latencyMs: number,
    private readonly bytesPerSecond: number,
    private readonly onBytes: (n: number) => void,
  ) {}

  start(): void {
    this.from.on('data', (data: Buffer) => {
      for (let i = 0; i < data.length; i += CHUNK) this.schedule(data.subarray(i, i + CHUNK));
    });
  }

  stop(): void {
    this.closed = true;
  }

  private schedule(chunk: Buffer): void {
    const now = Date.now();
    const start = Math.max(now, this.nextFree);
    const txMs = this.bytesPerSecond > 0 ? (chunk.length / this.bytesPerSecond) * 1000 : 0;
    this.nextFree = start + txMs;
    const deliverAt = this.nextFree + this.latencyMs;
    this.queued += chunk.length;
    if (this.queued > HIGH_WATER) this.from.pause();
    setTimeout(() => {
      this.queued -= chunk.length;
      if (this.queued <= HIGH_WATER / 2 && !this.closed) this.from.resume();
      if (this.closed || this.to.destroyed) return;
      this.onBytes(chunk.length);
      this.to.write(chunk);
    }, Math.max(0, deliverAt - now));
  }
}

export class FaultProxy {
  private readonly options: FaultProxyOptions;
  private server: net.Server | undefined;
  private boundPort = 0;
  private outageUntil = 0;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; lanes: Lane[] }>();
  resetAfterBytes: number;
  readonly stats: FaultProxyStats = { connections: 0, refused: 0, resets: 0, bytesUp: 0, bytesDown: 0 };

  constructor(options: FaultProxyOptions) {
    this.options = options;
    this.resetAfterBytes = options.resetAfterBytes ?? 0;
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.boundPort}`;
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : 0;
    this.server = server;
  }

  async stop(): Promise<void> {
    this.resetAll();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Cuts the link for `ms`: open connections are reset, new ones refused until it ends. */
  outage(ms: number): void {
    this.outageUntil = Date.now() + ms;
    this.resetAll();
  }

  /** Ends an outage early. */
  restore(): void {
    this.outageUntil = 0;
  }

  get inOutage(): boolean {
    return Date.now() < this.outageUntil;
  }

  /** Resets (TCP RST) every open connection, mid-stream. */
  resetAll(): void {
    for (const pair of [...this.pairs]) this.reset(pair);
  }

  private accept(client: net.Socket): void {
    if (this.inOutage) {
      this.stats.refused++;
      client.resetAndDestroy();
      return;
    }
    this.stats.connections++;
    const upstream = net.connect(this.options.targetPort, this.options.targetHost);
    const latency = this.options.latencyMs ?? 0;
    const rate = this.options.bytesPerSecond ?? 0;
    let carried = 0;
    const pair = { client, upstream, lanes: [] as Lane[] };
    const up = new Lane(client, upstream, latency, rate, (n) => {
      this.stats.bytesUp += n;
      carried += n;
      if (this.resetAfterBytes > 0 && carried >= this.resetAfterBytes) this.reset(pair);
    });
    const down = new Lane(upstream, client, latency, rate, (n) => {
      this.stats.bytesDown += n;
    });
    pair.lanes.push(up, down);
    this.pairs.add(pair);
    const close = (): void => {
      if (!this.pairs.delete(pair)) return;
      up.stop();
      down.stop();
      client.destroy();
      upstream.destroy();
    };
    // A close on one side reaches the other after the latency, as on a real link.
    client.on('close', () => setTimeout(close, latency));
    upstream.on('close', () => setTimeout(close, latency));
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    up.start();
    down.start();
  }

  private reset(pair: { client: net.Socket; upstream: net.Socket; lanes: Lane[] }): void {
    if (!this.pairs.delete(pair)) return;
    this.stats.resets++;
    for (const lane of pair.lanes) lane.stop();
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }
}
