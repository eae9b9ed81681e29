// The shore ingester: one member of a shared subscription on the shore broker. Each batch is
// stored (idempotently) before it is acknowledged, so a batch is never lost by an ingester that
// dies: the broker gives it to another member. Every few seconds it publishes each instrument's
// gap report back to the ship (retained), which lets the ship forget what the shore holds and
// resend what it lacks: kept under the status size cap, and signed when shore.statusKeyFile is set.
import { ERRORS } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeBatch } from '../sync/codec.js';
import { MqttLink, type MqttLinkOptions } from '../sync/link.js';
import { shoreStatusTopic, type ShoreStatus } from '../sync/records.js';
import { shoreStatusPayload } from '../sync/status.js';
import type { GapReport, ShoreStore } from './store.js';

export interface ShoreIngesterOptions {
  store: ShoreStore;
  link: Omit<MqttLinkOptions, 'subscriptions' | 'onMessage' | 'onConnectionChange' | 'outageCode' | 'configKey' | 'logger'>;
  group: string;
  topicPrefix: string;
  statusIntervalMs: number;
  /** A failed database write is retried after this long (default 2000 ms). */
  retryMs?: number;
  /** The key gap reports are signed with (shore.statusKeyFile); null or absent: unsigned. */
  statusKey?: string | null;
  logger: Logger;
}

export interface IngesterStats {
  batches: number;
  records: number;
  duplicates: number;
  badBatches: number;
  dbErrors: number;
  connected: boolean;
  lastBatchAt: number | null;
}

export class ShoreIngester {
  private readonly options: ShoreIngesterOptions;
  private readonly log: Logger;
  private link: MqttLink | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly lastPublished = new Map<string, { text: string; at: number }>();
  private publishingStatus = false;
  readonly stats: IngesterStats = { batches: 0, records: 0, duplicates: 0, badBatches: 0, dbErrors: 0, connected: false, lastBatchAt: null };

  constructor(options: ShoreIngesterOptions) {
    this.options = options;
    this.log = options.logger;
  }

  /** The shared subscription this ingester joins. */
  get subscription(): string {
    return `$share/${this.options.group}/${this.options.topicPrefix}/+/batch`;
  }

  async start(): Promise<void> {
    this.running = true;
    this.link = new MqttLink({
      ...this.options.link,
      subscriptions: [{ topic: this.subscription, qos: 1 }],
      onMessage: (topic, payload) => this.onBatch(topic, payload),
      onConnectionChange: (up) => {
        this.stats.connected = up;
        if (up) this.lastPublished.clear();
      },
      outageCode: 'PW_E_MQTT',
      configKey: 'shore',
      logger: this.log,
    });
    await this.link.start();
    if (!this.options.statusKey) {
      this.log.info('gap reports are published unsigned (shore.statusKeyFile is empty): ships with sync.shoreKeyFile set ignore them');
    }
    this.statusTimer = setInterval(() => void this.publishStatus(), this.options.statusIntervalMs);
    this.statusTimer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = undefined;
    await this.link?.stop();
    this.link = undefined;
  }

  /** Gap reports of every instrument seen. */
  async gapReports(): Promise<GapReport[]> {
    const out: GapReport[] = [];
    for (const inst of await this.options.store.instruments()) out.push(await this.options.store.gaps(inst));
    return out;
  }

  private async onBatch(topic: string, payload: Buffer): Promise<void> {
    let batch;
    try {
      batch = decodeBatch(payload);
    } catch (err) {
      // Acknowledged and dropped: redelivering it would not make it readable. Its records show as gaps.
      this.stats.badBatches++;
      this.log.error({ code: 'PW_E_SHORE_BATCH', topic, bytes: payload.length, err }, ERRORS.PW_E_SHORE_BATCH.message);
      return;
    }
    const fromTopic = topic.split('/').at(-2);
    if (fromTopic !== batch.instrument) {
      this.stats.badBatches++;
      this.log.error({ code: 'PW_E_SHORE_BATCH', topic, instrument: batch.instrument }, 'batch instrument does not match its topic; dropped');
      return;
    }
    // Not acknowledged until stored: retry while running; if stopped first, the broker redelivers.
    for (;;) {
      try {
        const r = await this.options.store.apply(batch);
        this.stats.batches++;
        this.stats.records += r.added;
        this.stats.duplicates += r.duplicates;
        this.stats.lastBatchAt = Date.now();
        this.log.debug({ instrument: batch.instrument, records: batch.records.length, ...r }, 'batch stored');
        return;
      } catch (err) {
        this.stats.dbErrors++;
        this.log.error({ code: 'PW_E_SHORE_DB', err, instrument: batch.instrument }, ERRORS.PW_E_SHORE_DB.message);
        if (!this.running) throw err;
        await new Promise((r) => setTimeout(r, this.options.retryMs ?? 2000));
        if (!this.running) throw err;
      }
    }
  }

  /** Publishes each instrument's gap report if it changed (or every 10 intervals as a heartbeat). */
  async publishStatus(): Promise<void> {
    const link = this.link;
    if (!link?.connected || this.publishingStatus) return;
    this.publishingStatus = true;
    try {
      for (const inst of await this.options.store.instruments()) {
        const status: ShoreStatus = await this.options.store.shoreStatus(inst);
        const { generatedAt: _, ...comparable } = status;
        const text = JSON.stringify(comparable);
        const last = this.lastPublished.get(inst);
        const now = Date.now();
        if (last && last.text === text && now - last.at < this.options.statusIntervalMs * 10) continue;
        const payload = shoreStatusPayload(status, this.options.statusKey ?? null);
        if (payload === null) {
          this.log.warn({ instrument: inst.slice(0, 100) }, 'the gap report of this instrument does not fit the status size cap; not published');
          this.lastPublished.set(inst, { text, at: now });
          continue;
        }
        await link.publish(shoreStatusTopic(this.options.topicPrefix, inst), payload, { qos: 1, retain: true });
        this.lastPublished.set(inst, { text, at: now });
      }
    } catch (err) {
      this.log.warn({ err }, 'could not publish the shore status');
    } finally {
      this.publishingStatus = false;
    }
  }
}
