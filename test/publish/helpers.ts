// Test helpers: a recording subscriber, a cuttable TCP proxy, and in-memory providers.
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import type { CountsWindow, ModelInfo, PipelineStats, PublisherProviders } from '../../src/publish/types.js';

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

/** A real MQTT.js client subscribed to `topic`, recording every message. */
export class Recorder {
  readonly messages: Received[] = [];
  constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload: payload.toString(), retain: packet.retain });
    });
  }

  static async subscribe(url: string, topic: string, options: IClientOptions = {}): Promise<Recorder> {
    const client = await connectAsync(url, { reconnectPeriod: 100, clean: true, ...options });
    const recorder = new Recorder(client);
    await client.subscribeAsync(topic, { qos: 1 });
    return recorder;
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  last(topic: string): Received | undefined {
    return this.on(topic).at(-1);
  }

  clear(): void {
    this.messages.length = 0;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { freePort } from '../helpers/ports.js';

/** A TCP proxy to 127.0.0.1:`target` whose live connections can be cut abruptly (no DISCONNECT). */
export class Proxy {
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  constructor(private readonly target: number) {}

  async start(): Promise<number> {
    const server = createServer((inbound) => {
      const outbound = netConnect(this.target, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.cut();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Providers backed by plain fields, standing in for the daemon's database reads. */
export class MemoryProviders implements PublisherProviders {
  seq = 0;
  current: CountsWindow | null = null;
  closed: CountsWindow[] = [];
  published: number[] = [];
  model: ModelInfo | null = null;
  stats: PipelineStats = { framesSeen: 0, classified: 0, duplicates: 0, quarantined: 0, queueDepth: 0, backend: 'wasm' };

  getCurrentCounts(): CountsWindow | null {
    return this.current;
  }
  getUnpublishedWindows(limit: number): CountsWindow[] {
    return this.closed.filter((w) => !this.published.includes(w.startMs)).slice(0, limit);
  }
  markWindowPublished(startMs: number): void {
    this.published.push(startMs);
  }
  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }
  getModelInfo(): ModelInfo | null {
    return this.model;
  }
  getStats(): PipelineStats {
    return this.stats;
  }
}
