// The zero-set-up broker: aedes in-process, used when no broker URL is configured.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { PlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';

export interface EmbeddedBrokerOptions {
  /** Listen address (default 127.0.0.1: reachable from this machine only). */
  host?: string;
  /** TCP port (default 1883; 0 picks a free one, read it back from `port`). */
  port?: number;
  logger: Logger;
}

/** An aedes MQTT broker listening on a TCP port; retained messages live in memory only. */
export class EmbeddedBroker {
  private readonly options: EmbeddedBrokerOptions;
  private readonly log: Logger;
  private aedes: Aedes | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(options: EmbeddedBrokerOptions) {
    this.options = options;
    this.log = options.logger;
  }

  /** The bound port (after start). */
  get port(): number {
    const address = this.server?.address();
    if (address === null || address === undefined || typeof address === 'string') {
      throw new Error('EmbeddedBroker is not listening');
    }
    return (address as AddressInfo).port;
  }

  /** `mqtt://host:port` for clients on this machine (after start). */
  get url(): string {
    const host = this.options.host ?? '127.0.0.1';
    const shown = host.includes(':') ? `[${host}]` : host;
    return `mqtt://${shown}:${this.port}`;
  }

  /** Resolves once listening; throws PW_E_MQTT_BIND when the address cannot be bound. */
  async start(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1';
    const port = this.options.port ?? 1883;
    const aedes = await Aedes.createBroker();
    aedes.on('clientError', (client, err) => {
      this.log.debug({ err, clientId: client.id }, 'MQTT client error on embedded broker');
    });
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      throw new PlankwatchError('PW_E_MQTT_BIND', `${host}:${port}: ${(err as Error).message}`, { cause: err });
    }
    server.on('error', (err) => this.log.error({ err, code: 'PW_E_INTERNAL' }, 'embedded MQTT broker error'));
    this.aedes = aedes;
    this.server = server;
    this.log.info({ host, port: this.port }, 'embedded MQTT broker listening');
  }

  /** Disconnects every client, stops listening and forgets retained messages. */
  async stop(): Promise<void> {
    const aedes = this.aedes;
    const server = this.server;
    this.aedes = null;
    this.server = null;
    if (server === null || aedes === null) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }
}
