// Publishes the daemon's state to MQTT by pulling it from providers, so that nothing has to be
// buffered while the broker is away and everything current is sent again after each reconnect.
import type { Logger } from '../log.js';
import type { Part } from '../types.js';
import { MqttConnection, type MqttConnectionOptions } from './mqtt.js';
import { countsPayload, detectionPayload, modelPayload, statsPayload } from './payloads.js';
import { topicsFor, type Topics } from './topics.js';
import type { CountsWindow, Detection, PipelineStats, PublisherProviders } from './types.js';

/** Connection settings passed through to MQTT.js (see MqttConnectionOptions). */
export type PublisherMqttOptions = Omit<MqttConnectionOptions, 'will' | 'onConnect' | 'onConnectionChange' | 'logger'>;

export interface PublisherOptions {
  mqtt: PublisherMqttOptions;
  /** Topic prefix (default `plankwatch`). */
  prefix?: string;
  /** Instrument name: the second topic level. */
  instrument: string;
  /** At most one `counts` message for the open window per this many ms (default 1000). */
  countsMinIntervalMs?: number;
  /** `stats` period (default 10000 ms); also how often closed windows are looked for. */
  statsIntervalMs?: number;
  /** Publish one `detections` message per ROI (default false). */
  detections?: boolean;
  /** Closed windows fetched per provider call when catching up (default 100). */
  catchUpBatch?: number;
  providers: PublisherProviders;
  /** Called with true/false when the broker connection comes and goes (e.g. to set a gauge). */
  onConnectionChange?: (connected: boolean) => void;
  /** Child logger, e.g. `root.child({ module: 'publish' })`. */
  logger: Logger;
}

/**
 * Owns the MQTT topics of one instrument. Call the `notify*` methods when something changes;
 * they are cheap, never throw and never block: the publisher reads the providers when it sends.
 */
export class Publisher implements Part {
  readonly name = 'publish';
  private readonly options: PublisherOptions;
  private readonly log: Logger;
  private topics: Topics | null = null;
  private connection: MqttConnection | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private countsTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private countsDirty = false;
  private flushAgain = false;
  private lastCountsAt = 0;
  private startedAt = 0;
  private lastStatsAt = 0;
  private lastClassified = 0;
  private running = false;
  /** The latest retained message of each topic published through publishJson, sent again on reconnect. */
  private readonly retained = new Map<string, string>();

  constructor(options: PublisherOptions) {
    this.options = options;
    this.log = options.logger;
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.connection?.connected ?? false;
  }

  /** Starts connecting (returns without waiting for the broker) and starts the stats timer. */
  async start(): Promise<void> {
    const o = this.options;
    const topics = topicsFor(o.prefix ?? 'plankwatch', o.instrument);
    this.topics = topics;
    this.startedAt = Date.now();
    this.lastStatsAt = this.startedAt;
    this.lastClassified = this.readStats()?.classified ?? 0;
    this.connection = new MqttConnection({
      ...o.mqtt,
      will: { topic: topics.availability, payload: 'offline', qos: 1, retain: true },
      onConnect: () => this.onConnect(),
      ...(o.onConnectionChange ? { onConnectionChange: o.onConnectionChange } : {}),
      logger: this.log,
    });
    await this.connection.start();
    this.running = true;
    const interval = o.statsIntervalMs ?? 10_000;
    this.statsTimer = setInterval(() => this.onStatsTick(), interval);
    this.statsTimer.unref();
  }

  /** Publishes `offline` (retained) and disconnects. Pending counts are left to the providers. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    if (this.countsTimer !== null) clearTimeout(this.countsTimer);
    this.statsTimer = null;
    this.countsTimer = null;
    const connection = this.connection;
    const topics = this.topics;
    if (connection === null || topics === null) return;
    await this.flushing;
    await connection.stop({ topic: topics.availability, payload: 'offline', qos: 1, retain: true });
    this.connection = null;
  }

  /** The open window's counts changed: publish them within countsMinIntervalMs. */
  notifyCounts(): void {
    this.countsDirty = true;
    this.scheduleCounts();
  }

  /** A window closed: publish its final counts (and the new open window) soon. */
  notifyWindowClosed(): void {
    this.notifyCounts();
  }

  /** The active ensemble or backend changed: republish `model`. */
  notifyModel(): void {
    this.publishModel().catch((err: unknown) => this.fail('model', err));
  }

  /** One classified ROI; published only when `detections` is on and the broker is connected. */
  publishDetection(detection: Detection): void {
    if (this.options.detections !== true || this.topics === null || this.connection === null) return;
    if (!this.connection.connected) return;
    try {
      const payload = JSON.stringify(detectionPayload(detection));
      void this.connection.publish(this.topics.detections, payload, { qos: 0, retain: false });
    } catch (err) {
      this.fail('detection', err);
    }
  }

  /**
   * A JSON message of another stage on one of this instrument's topics (e.g. the nav stage's
   * profile). A retained one is kept and sent again after every reconnect; never throws.
   */
  publishJson(topic: 'profile' | 'concentrations' | 'position', payload: unknown, options: { qos: 0 | 1; retain: boolean }): void {
    if (this.topics === null) return;
    try {
      const name = this.topics[topic];
      const text = JSON.stringify(payload);
      if (options.retain) this.retained.set(name, text);
      if (this.connection?.connected !== true) return;
      void this.connection.publish(name, text, options);
    } catch (err) {
      this.fail(topic, err);
    }
  }

  // ---- internals ----

  private onConnect(): void {
    const topics = this.topics;
    const connection = this.connection;
    if (topics === null || connection === null) return;
    void connection.publish(topics.availability, 'online', { qos: 1, retain: true });
    for (const [name, text] of this.retained) void connection.publish(name, text, { qos: 1, retain: true });
    this.publishModel().catch((err: unknown) => this.fail('model', err));
    this.countsDirty = true;
    this.requestFlush();
  }

  private async publishModel(): Promise<void> {
    const topics = this.topics;
    const connection = this.connection;
    if (topics === null || connection === null || !connection.connected) return;
    const model = this.call('getModelInfo', () => this.options.providers.getModelInfo());
    if (model === undefined || model === null) return;
    await connection.publish(topics.model, JSON.stringify(modelPayload(model)), { qos: 1, retain: true });
  }

  private scheduleCounts(): void {
    if (!this.running || this.countsTimer !== null) return;
    const min = this.options.countsMinIntervalMs ?? 1000;
    const delay = Math.max(0, this.lastCountsAt + min - Date.now());
    this.countsTimer = setTimeout(() => {
      this.countsTimer = null;
      this.requestFlush();
    }, delay);
    this.countsTimer.unref();
  }

  /** Runs one flush at a time; a request during a flush runs another right after it. */
  private requestFlush(): void {
    if (!this.running) return;
    if (this.flushing !== null) {
      this.flushAgain = true;
      return;
    }
    this.flushing = this.flushCounts()
      .catch((err: unknown) => this.fail('counts', err))
      .finally(() => {
        this.flushing = null;
        if (this.flushAgain) {
          this.flushAgain = false;
          this.requestFlush();
        }
      });
  }

  /** Final messages of closed windows first (oldest first), then the open window last so it stays retained. */
  private async flushCounts(): Promise<void> {
    const connection = this.connection;
    if (connection === null || !connection.connected) return;
    const providers = this.options.providers;
    const batch = this.options.catchUpBatch ?? 100;
    let previousFirst: number | undefined;
    for (;;) {
      const closed = this.call('getUnpublishedWindows', () => providers.getUnpublishedWindows(batch));
      if (closed === undefined) return;
      // A provider that hands back the same windows again would make this loop forever.
      if (closed.length > 0 && closed[0].startMs === previousFirst) return;
      previousFirst = closed[0]?.startMs;
      for (const window of closed) {
        if (!this.running || !(await this.publishCounts(window, true))) return;
        const marked = this.call('markWindowPublished', () => {
          providers.markWindowPublished(window.startMs);
          return true;
        });
        if (marked !== true) return;
      }
      if (closed.length < batch) break;
    }
    if (!this.countsDirty) return;
    this.countsDirty = false;
    this.lastCountsAt = Date.now();
    const current = this.call('getCurrentCounts', () => providers.getCurrentCounts());
    if (current === undefined || current === null) return;
    if (!(await this.publishCounts(current, false))) this.countsDirty = true;
  }

  private async publishCounts(window: CountsWindow, final: boolean): Promise<boolean> {
    const connection = this.connection;
    const topics = this.topics;
    if (connection === null || topics === null || !connection.connected) return false;
    const seq = this.call('nextSeq', () => this.options.providers.nextSeq());
    if (seq === undefined) return false;
    const payload = JSON.stringify(countsPayload(this.options.instrument, window, seq, final));
    return connection.publish(topics.counts, payload, { qos: 1, retain: true });
  }

  private onStatsTick(): void {
    try {
      const now = Date.now();
      const stats = this.readStats();
      if (stats === undefined) return;
      const payload = statsPayload(stats, this.lastClassified, now - this.lastStatsAt, now - this.startedAt);
      this.lastStatsAt = now;
      this.lastClassified = stats.classified;
      if (this.topics !== null && this.connection?.connected === true) {
        void this.connection.publish(this.topics.stats, JSON.stringify(payload), { qos: 0, retain: false });
        this.requestFlush();
      }
    } catch (err) {
      this.fail('stats', err);
    }
  }

  /** A message that could not even be built (bad provider data): logged, never thrown. */
  private fail(topic: string, err: unknown): void {
    this.log.error({ err, code: 'PW_E_INTERNAL', topic }, 'could not publish');
  }

  private readStats(): PipelineStats | undefined {
    return this.call('getStats', () => this.options.providers.getStats());
  }

  /** Calls a provider; a throw is logged and turned into undefined so publishing never breaks the daemon. */
  private call<T>(name: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.log.error({ err, code: 'PW_E_INTERNAL', provider: name }, 'publish provider failed');
      return undefined;
    }
  }
}
