// The one place MQTT.js is touched: connect, reconnect with back-off, publish without queueing.
import { randomBytes } from 'node:crypto';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { brokerAccessOptions, redactUrl, type BrokerAccess } from './broker-options.js';
import { endClient } from './end-client.js';
import { OutageTracker } from './outage.js';
import type { Logger } from '../log.js';

/** Where the broker is and how to log in (BrokerAccess: `mqtt://host:1883` or `mqtts://host:8883`; a password in the URL is accepted but never logged), plus: */
export interface MqttConnectionOptions extends BrokerAccess {
  /** Default `plankwatch_<random hex>`. */
  clientId?: string;
  /** Delay before the first reconnect attempt, doubled after each failure (default 2000 ms). */
  reconnectPeriodMs?: number;
  /** Upper bound of the reconnect delay (default 30000 ms). */
  reconnectMaxMs?: number;
  /** Give up on a CONNACK after this long (default 10000 ms). */
  connectTimeoutMs?: number;
  /** A publish not acknowledged within this time counts as failed (default 10000 ms). */
  publishTimeoutMs?: number;
  keepaliveS?: number;
  /** Last will, registered with the broker at every connect. */
  will?: { topic: string; payload: string; qos: 0 | 1; retain: boolean };
  /** Called after every successful (re)connect. Errors it throws are logged. */
  onConnect?: () => void;
  /** Called when the connection state changes (true on connect, false on loss). */
  onConnectionChange?: (connected: boolean) => void;
  logger: Logger;
}

export interface PublishOptions {
  qos: 0 | 1;
  retain: boolean;
}

export { redactUrl };

/**
 * A connection to one broker that never throws into its caller and never queues while offline:
 * `publish()` resolves false when there is no connection. Reconnection is driven here (MQTT.js's own
 * reconnect timer is off) so the delay can back off, and every reconnect starts with an empty
 * outgoing store: state lost during an outage is republished from its source, not replayed.
 */
export class MqttConnection {
  private readonly options: MqttConnectionOptions;
  private readonly log: Logger;
  private readonly outage: OutageTracker;
  private client: MqttClient | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopping = false;

  constructor(options: MqttConnectionOptions) {
    this.options = options;
    this.log = options.logger;
    this.outage = new OutageTracker({ code: 'PW_E_MQTT', url: redactUrl(options.url), logger: options.logger, onConnectionChange: options.onConnectionChange });
  }

  /** True while a CONNACK has been received and the socket is open. */
  get connected(): boolean {
    return this.outage.connected && this.client?.connected === true;
  }

  /**
   * Starts connecting and returns at once; a broker that is down is not an error.
   * Throws PW_E_CONFIG_INVALID only for an unusable URL or unreadable TLS files.
   */
  async start(): Promise<void> {
    const clientOptions = await this.clientOptions();
    this.stopping = false;
    this.outage.starting();
    const client = connect(this.options.url, clientOptions);
    this.client = client;
    client.on('connect', () => this.handleConnect());
    client.on('close', () => this.handleClose());
    client.on('error', (err) => {
      if (!this.stopping) this.outage.error(err);
    });
  }

  /**
   * Publishes one message if connected. Resolves true once written (QoS 0) or acknowledged
   * (QoS 1), false when offline, on error or after publishTimeoutMs. Never rejects.
   */
  publish(topic: string, payload: string, options: PublishOptions): Promise<boolean> {
    const client = this.client;
    if (client === null || !this.connected) return Promise.resolve(false);
    const timeoutMs = this.options.publishTimeoutMs ?? 10_000;
    return new Promise((resolve) => {
      let settled = false;
      const done = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      try {
        client.publish(topic, payload, { qos: options.qos, retain: options.retain }, (err) => done(!err));
      } catch (err) {
        this.log.debug({ err, topic }, 'MQTT publish failed');
        done(false);
      }
    });
  }

  /**
   * Publishes `last` (e.g. availability `offline`) if connected, then disconnects cleanly
   * (so the broker does not send the will). Waits at most publishTimeoutMs for each step.
   */
  async stop(last?: { topic: string; payload: string } & PublishOptions): Promise<void> {
    this.stopping = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const client = this.client;
    if (client === null) return;
    if (last !== undefined) await this.publish(last.topic, last.payload, last);
    await endClient(client, this.options.publishTimeoutMs ?? 10_000);
    this.client = null;
    this.outage.down(true);
  }

  private async clientOptions(): Promise<IClientOptions> {
    const o = this.options;
    return {
      ...(await brokerAccessOptions(o, { url: 'publish.mqttUrl', prefix: 'publish' })),
      clientId: o.clientId ?? `plankwatch_${randomBytes(4).toString('hex')}`,
      clean: true,
      keepalive: o.keepaliveS ?? 30,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      reconnectPeriod: 0,
      queueQoSZero: false,
      resubscribe: false,
      ...(o.will !== undefined ? { will: { ...o.will } } : {}),
    };
  }

  private handleConnect(): void {
    this.failures = 0;
    const outage = this.outage.up();
    const url = redactUrl(this.options.url);
    if (outage) this.log.info({ url, downS: outage.downS }, 'MQTT broker reachable again');
    else this.log.info({ url }, 'MQTT connected');
    try {
      this.options.onConnect?.();
    } catch (err) {
      this.log.error({ err, code: 'PW_E_INTERNAL' }, 'MQTT onConnect handler failed');
    }
  }

  private handleClose(): void {
    const ending = this.stopping || this.client === null;
    this.outage.down(ending);
    if (ending || this.reconnectTimer !== null) return;
    const base = this.options.reconnectPeriodMs ?? 2000;
    const max = this.options.reconnectMaxMs ?? 30_000;
    const delay = Math.min(max, base * 2 ** Math.min(this.failures, 16));
    this.failures += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stopping || this.client === null) return;
      this.client.reconnect();
    }, delay);
  }
}
