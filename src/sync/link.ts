// MQTT.js with a persistent session, for sync: the ship's link to the shore broker and the shore
// ingester's subscription. Unlike the live publisher (src/publish/mqtt.ts), nothing here may be
// lost on a reconnect: clean start is off, the session outlives the connection, QoS 1 messages
// are acknowledged only after the handler has stored them, and unacknowledged publishes are
// resent by MQTT.js after a reconnect.
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { brokerAccessOptions, redactUrl, type BrokerAccess } from '../publish/broker-options.js';
import { endClient } from '../publish/end-client.js';
import { OutageTracker } from '../publish/outage.js';

export interface MqttLinkOptions extends BrokerAccess {
  /** Stable across restarts: the broker finds the session by it. */
  clientId: string;
  keepaliveS?: number;
  /** How long the broker keeps the session while disconnected (MQTT 5 session expiry, default 7 days). */
  sessionExpiryS?: number;
  /** MQTT 5 Maximum Packet Size: the broker drops, unsent, any message to this client that is larger. Default: none. */
  maximumPacketSize?: number;
  /** Delay between reconnect attempts (default 3000 ms). */
  reconnectPeriodMs?: number;
  connectTimeoutMs?: number;
  /** Subscribed (again) after every connect. */
  subscriptions?: { topic: string; qos: 0 | 1 }[];
  /** Called for each message, one at a time; a QoS 1 message is acknowledged when it resolves. */
  onMessage?: (topic: string, payload: Buffer) => Promise<void> | void;
  onConnectionChange?: (connected: boolean) => void;
  /** Logged once per outage. */
  outageCode: ErrorCode;
  /** Name of the config section, for error messages (e.g. "sync"). */
  configKey: string;
  logger: Logger;
}

/** A persistent-session MQTT connection. `start()` returns at once; a broker that is down is not an error. */
export class MqttLink {
  private readonly options: MqttLinkOptions;
  private readonly log: Logger;
  private readonly outage: OutageTracker;
  private client: MqttClient | null = null;
  private stopping = false;
  private readonly connectWaiters = new Set<() => void>();

  constructor(options: MqttLinkOptions) {
    this.options = options;
    this.log = options.logger;
    this.outage = new OutageTracker({ code: options.outageCode, url: redactUrl(options.url), logger: options.logger, onConnectionChange: options.onConnectionChange });
  }

  get connected(): boolean {
    return this.outage.connected && this.client?.connected === true;
  }

  async start(): Promise<void> {
    const clientOptions = await this.clientOptions();
    this.stopping = false;
    const client = connect(this.options.url, clientOptions);
    this.client = client;
    client.handleMessage = (packet: IPublishPacket, callback: (err?: Error) => void): void => {
      this.dispatch(packet).then(() => callback(), (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))));
    };
    client.on('connect', (connack) => this.handleConnect(connack.sessionPresent));
    client.on('close', () => this.handleClose());
    client.on('offline', () => this.handleClose());
    client.on('error', (err) => this.outage.error(err));
  }

  /** Resolves when connected (at once if already), or when `stop()` is called. */
  waitConnected(): Promise<void> {
    if (this.connected || this.stopping) return Promise.resolve();
    return new Promise((resolve) => this.connectWaiters.add(resolve));
  }

  /**
   * Publishes at QoS 1 and resolves on the broker's PUBACK. If the connection drops first,
   * MQTT.js keeps the message and resends it after the reconnect; the promise then resolves on
   * that acknowledgement. Rejects only when the client is stopped or refuses the message.
   */
  publish(topic: string, payload: Buffer | string, options: { qos: 0 | 1; retain?: boolean } = { qos: 1 }): Promise<void> {
    const client = this.client;
    if (client === null) return Promise.reject(new Error('MQTT link not started'));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: options.qos, retain: options.retain ?? false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Disconnects cleanly; the broker keeps the session (and messages for it) for sessionExpiryS. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of this.connectWaiters) w();
    this.connectWaiters.clear();
    const client = this.client;
    if (client === null) return;
    await endClient(client, 5000);
    this.client = null;
    this.outage.down(true);
  }

  private async dispatch(packet: IPublishPacket): Promise<void> {
    const handler = this.options.onMessage;
    if (!handler) return;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload);
    await handler(packet.topic, payload);
  }

  private handleConnect(sessionPresent: boolean): void {
    const url = redactUrl(this.options.url);
    const outage = this.outage.up();
    if (outage) this.log.info({ url, sessionPresent, downS: outage.downS }, 'link to the broker is back');
    else this.log.info({ url, sessionPresent }, 'connected to the broker');
    const subs = this.options.subscriptions ?? [];
    if (subs.length > 0 && this.client) {
      const map: Record<string, { qos: 0 | 1 }> = {};
      for (const s of subs) map[s.topic] = { qos: s.qos };
      this.client.subscribe(map, (err) => {
        if (err) this.log.warn({ err, code: this.options.outageCode }, 'subscribe failed; will retry on the next connect');
      });
    }
    for (const w of this.connectWaiters) w();
    this.connectWaiters.clear();
  }

  private handleClose(): void {
    this.outage.down(this.stopping);
  }

  private async clientOptions(): Promise<IClientOptions> {
    const o = this.options;
    return {
      ...(await brokerAccessOptions(o, { url: `${o.configKey}.url`, prefix: o.configKey })),
      clientId: o.clientId,
      protocolVersion: 5,
      clean: false,
      properties: {
        sessionExpiryInterval: o.sessionExpiryS ?? 7 * 24 * 3600,
        ...(o.maximumPacketSize ? { maximumPacketSize: o.maximumPacketSize } : {}),
      },
      keepalive: o.keepaliveS ?? 60,
      connectTimeout: o.connectTimeoutMs ?? 30_000,
      reconnectPeriod: o.reconnectPeriodMs ?? 3000,
      resubscribe: false,
      queueQoSZero: false,
    };
  }
}
