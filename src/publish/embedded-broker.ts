// The zero-set-up broker: aedes in-process, used when no broker URL is configured. It serves the
// daemon's topics and nothing else: only the daemon's own publisher (which proves itself with a
// secret made at start and held in memory) may publish; everyone else may only read
// `<prefix>/...`, with a user name and password when they are configured (required off loopback).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { PlankwatchError } from '../errors.js';
import { isLoopback } from '../http/auth.js';
import type { Logger } from '../log.js';
import type { Part } from '../types.js';
import { PacketSizeLimit } from './packet-limit.js';

/** How the daemon's publisher logs in: pass these as its client id, user name and password. */
export interface BrokerLogin {
  clientId: string;
  username: string;
  password: string;
}

export interface EmbeddedBrokerOptions {
  /** Listen address (default 127.0.0.1: reachable from this machine only). Any other requires `subscriber`. */
  host?: string;
  /** TCP port (default 1883; 0 picks a free one, read it back from `port`). */
  port?: number;
  /**
   * The one client allowed to publish (the daemon's publisher) and where: `<prefix>/<instrument>/...`.
   * Its password defaults to a fresh random secret (read it from `ownerLogin`); a connection with
   * this client id and without it is refused, so nobody can take the id over.
   */
  owner: { clientId: string; prefix: string; instrument: string; password?: string };
  /** Credentials every other client must give; without them anyone who reaches the port may read `<prefix>/...`. */
  subscriber?: { username: string; password: string };
  /** Largest MQTT packet accepted from a client (default 256 KiB); a larger one closes its connection before it is read. */
  maxPacketBytes?: number;
  /** Most retained messages kept (default 32); beyond, a message is delivered but not retained. */
  maxRetained?: number;
  /** Most retained payload bytes kept, all topics together (default 1 MiB). */
  maxRetainedBytes?: number;
  logger: Logger;
}

/** Refusals of the same kind are logged at most once per this many ms (a client retrying in a loop). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** An aedes MQTT broker listening on a TCP port; retained messages live in memory only. */
export class EmbeddedBroker implements Part {
  readonly name = 'broker';
  private readonly options: EmbeddedBrokerOptions;
  private readonly log: Logger;
  private readonly login: BrokerLogin;
  private readonly ownerTopics: string;
  private readonly readable: string;
  private readonly owners = new WeakSet<Client>();
  private readonly retained = new Map<string, number>();
  private readonly refusals = new Map<string, { at: number; since: number }>();
  private aedes: Aedes | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(options: EmbeddedBrokerOptions) {
    this.options = options;
    this.log = options.logger;
    const { clientId, prefix, instrument, password } = options.owner;
    this.login = { clientId, username: clientId, password: password ?? randomBytes(32).toString('base64url') };
    this.ownerTopics = `${prefix}/${instrument}/`;
    this.readable = prefix;
  }

  /** The bound port (after start). */
  get port(): number {
    const address = this.server?.address();
    if (address === null || address === undefined || typeof address === 'string') {
      throw new PlankwatchError('PW_E_INTERNAL', 'EmbeddedBroker is not listening');
    }
    return (address as AddressInfo).port;
  }

  /** `mqtt://host:port` for clients on this machine (after start). */
  get url(): string {
    const host = this.options.host ?? '127.0.0.1';
    const shown = host.includes(':') ? `[${host}]` : host;
    return `mqtt://${shown}:${this.port}`;
  }

  /** The login of the one client allowed to publish. Never logged, never written anywhere. */
  get ownerLogin(): BrokerLogin {
    return { ...this.login };
  }

  /**
   * Resolves once listening; throws PW_E_MQTT_BIND when the address cannot be bound and
   * PW_E_CONFIG_INVALID for a non-loopback host without subscriber credentials.
   */
  async start(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1';
    const port = this.options.port ?? 1883;
    if (!isLoopback(host) && this.options.subscriber === undefined) {
      throw new PlankwatchError(
        'PW_E_CONFIG_INVALID',
        `publish.embeddedHost (${host}) is not a loopback address: set publish.embeddedUsername and publish.embeddedPasswordFile, or bind the embedded broker to 127.0.0.1.`,
      );
    }
    const maxPacketBytes = this.options.maxPacketBytes ?? 256 * 1024;
    const aedes = await Aedes.createBroker({
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => done(this.authorizePublish(client, packet.topic, packet)),
      // Readers are served at QoS 0 whatever they ask: a persistent session (clean=false) at QoS 1
      // that goes away would make aedes queue every message for it in the daemon's memory,
      // unbounded. The subscription is changed in place because aedes persists the packet's own
      // subscription objects (its SUBACK still echoes the QoS asked for).
      authorizeSubscribe: (client, sub, done) => {
        if (!this.mayRead(client, sub.topic)) return done(null, null);
        if (!this.owners.has(client)) sub.qos = 0;
        done(null, sub);
      },
      authorizeForward: (client, packet) => (this.owners.has(client) || this.isReadable(packet.topic) ? packet : null),
    });
    aedes.on('clientError', (client, err) => {
      this.log.debug({ err, clientId: client.id }, 'MQTT client error on embedded broker');
    });
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      aedes.handle(socket);
      // Added after aedes's own 'readable' listener, which keeps control of the flow: this one
      // sees each chunk as aedes reads it and cuts the connection at the first oversized header.
      const limit = new PacketSizeLimit(maxPacketBytes);
      socket.on('data', (chunk: Buffer) => {
        const size = limit.feed(chunk);
        if (size === 0 || socket.destroyed) return;
        this.refuse('packet too large', { remote: socket.remoteAddress, bytes: Number.isFinite(size) ? size : 'malformed', maxPacketBytes });
        socket.destroy();
      });
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
    this.log.info({ host, port: this.port, subscriberLogin: this.options.subscriber !== undefined }, 'embedded MQTT broker listening');
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
    this.retained.clear();
    await closed;
  }

  // ---- access rules ----

  /** The daemon by its id and secret; everyone else by the subscriber login when one is set. */
  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    if (client.id === this.login.clientId) {
      if (sameSecret(password, this.login.password)) {
        this.owners.add(client);
        done(null, true);
        return;
      }
      this.refuse("the daemon's client id without the daemon's secret", { remote: remoteOf(client) });
      done(refusal(5, 'not authorized'), false);
      return;
    }
    const subscriber = this.options.subscriber;
    if (subscriber === undefined || (username === subscriber.username && sameSecret(password, subscriber.password))) {
      done(null, true);
      return;
    }
    this.refuse('wrong or missing user name or password', { clientId: client.id, remote: remoteOf(client) });
    done(refusal(4, 'bad user name or password'), false);
  }

  /** Undefined to allow; an error (aedes then closes the connection) to refuse. */
  private authorizePublish(client: Client | null, topic: string, packet: { retain: boolean; payload: Buffer | string }): Error | undefined {
    if (client === null || !this.owners.has(client) || !topic.startsWith(this.ownerTopics)) {
      this.refuse('publish by a client other than the daemon', { clientId: client?.id, remote: client ? remoteOf(client) : undefined, topic });
      return new Error('only the daemon publishes on this broker');
    }
    if (packet.retain) this.retainOrNot(topic, packet);
    return undefined;
  }

  /** Keeps the retained store within its bounds: a message over them is delivered, not retained. */
  private retainOrNot(topic: string, packet: { retain: boolean; payload: Buffer | string }): void {
    const bytes = Buffer.byteLength(packet.payload);
    if (bytes === 0) {
      this.retained.delete(topic);
      return;
    }
    const maxCount = this.options.maxRetained ?? 32;
    const maxBytes = this.options.maxRetainedBytes ?? 1024 * 1024;
    let total = bytes;
    for (const [t, b] of this.retained) if (t !== topic) total += b;
    const count = this.retained.size + (this.retained.has(topic) ? 0 : 1);
    if (count > maxCount || total > maxBytes) {
      packet.retain = false;
      this.refuse('retained store full', { topic, bytes, maxRetained: maxCount, maxRetainedBytes: maxBytes });
      return;
    }
    this.retained.set(topic, bytes);
  }

  /** Anyone logged in may read `<prefix>` and below; nothing else ($SYS, other roots, `#`). */
  private mayRead(client: Client, filter: string): boolean {
    if (filter === this.readable || filter.startsWith(`${this.readable}/`)) return true;
    this.refuse('subscription outside the daemon topics', { clientId: client.id, remote: remoteOf(client), filter });
    return false;
  }

  private isReadable(topic: string): boolean {
    return topic.startsWith(`${this.readable}/`);
  }

  /** Logs a refusal, the same kind at most once a minute with how many were not logged meanwhile. */
  private refuse(reason: string, details: Record<string, unknown>): void {
    const now = Date.now();
    const last = this.refusals.get(reason);
    if (last !== undefined && now - last.at < REFUSAL_LOG_INTERVAL_MS) {
      last.since += 1;
      return;
    }
    this.refusals.set(reason, { at: now, since: 0 });
    const repeated = last !== undefined && last.since > 0 ? { notLoggedSinceLast: last.since } : {};
    this.log.warn({ code: 'PW_E_MQTT_REFUSED', reason, ...details, ...repeated }, `embedded MQTT broker refused: ${reason}`);
  }
}

/** Compares in constant time, hashing both sides so that the length does not leak either. */
function sameSecret(given: Buffer | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function refusal(returnCode: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function remoteOf(client: Client): string | undefined {
  return (client.conn as Socket).remoteAddress;
}
