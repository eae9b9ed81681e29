// The ship's sync sender: claims outbox rows in priority order, packs them into compressed
// batches, spends the bandwidth budget, publishes at QoS 1 to the shore broker and marks rows
// acknowledged on PUBACK. It reads the shore's gap report to forget what the shore holds and to
// resend what the shore lacks, once the report passed the checks of status.ts and outbox.ts: a
// report that is too large, malformed, unsigned (with a key), stale, or claims more than was ever
// sent is logged with a code and changes nothing.
import sharp from 'sharp';
import { ERRORS, PlankwatchError } from '../errors.js';
import { readFrameImage } from '../ingest/index.js';
import type { Logger } from '../log.js';
import type { OutboxRepository } from '../store/index.js';
import type { Part } from '../types.js';
import { msToUtcMidnight, TokenBucket } from './budget.js';
import { encodeBatch, publishWireBytes, type Compression } from './codec.js';
import { MqttLink, type MqttLinkOptions } from './link.js';
import { NavRecords } from './nav-records.js';
import { CameraFrameRecords } from './camera-frame-records.js';
import { Outbox, utcDay, type OutboxRow, type OutboxStatus } from './outbox.js';
import { batchTopic, shoreStatusTopic, type ThumbnailPayload } from './records.js';
import { parseShoreStatus, SHIP_MAX_PACKET_BYTES, verifyShoreStatus } from './status.js';

/** The shore broker connection as the sender configures it (subscriptions and callbacks are its own). */
export type SyncLinkSettings = Omit<MqttLinkOptions, 'subscriptions' | 'onMessage' | 'onConnectionChange' | 'outageCode' | 'configKey' | 'logger' | 'maximumPacketSize'>;

export interface SyncSenderOptions {
  /** The outbox's tables in the daemon's store (its one connection: one writer). */
  outbox: OutboxRepository;
  instrument: string;
  link: SyncLinkSettings;
  topicPrefix: string;
  /** 0 = no cap. */
  bytesPerSecond: number;
  /** 0 = no cap. */
  dailyBytes: number;
  maxBatchBytes: number;
  maxBatchRecords: number;
  maxInFlight: number;
  compression: Compression;
  countsHoldMs: number;
  /**
   * Latency budget: a record waits up to this long for others to share its batch (fewer bytes per
   * ROI on a paid link). 0 (the default): every record goes out as soon as the link allows.
   */
  maxDelayMs?: number;
  resendAfterMs: number;
  ackTimeoutMs: number;
  /** Thumbnails are made from images found in these folders; null: thumbnail records carry none. */
  thumbnails: { size: number; imageDirs: string[] } | null;
  /** Also queue the navigation stage's series (ROI positions, track, CTD, volume); null or absent: not. */
  nav?: { trackIntervalMs: number; pollMs?: number } | null;
  /** Also queue whole camera frames and their ROIs' places and measures; null or absent: not. */
  cameraFrames?: { pollMs?: number } | null;
  /** How often to look for new rows when nothing wakes the sender (default 1000 ms). */
  idlePollMs?: number;
  /**
   * The key shared with the shore (sync.shoreKeyFile): only statuses signed with it may trim the
   * outbox. Null or absent: statuses are not authenticated (the broker ACL alone protects them).
   */
  shoreKey?: string | null;
  logger: Logger;
}

interface InFlight {
  id: number;
  seqs: number[];
  predictions: number;
  rawBytes: number;
  predictionRawBytes: number;
  wireBytes: number;
  deadline: number;
}

interface Piece {
  rows: OutboxRow[];
  json: string;
  payload: Buffer;
}

/** What the sender reports for /health and the stats topic. */
export interface SyncSenderState {
  connected: boolean;
  inFlight: number;
  pausedForDailyCap: boolean;
}

export class SyncSender implements Part {
  readonly name = 'sync';
  private readonly options: SyncSenderOptions;
  private readonly log: Logger;
  private outbox: Outbox | undefined;
  private link: MqttLink | undefined;
  private nav: NavRecords | undefined;
  private cameraFrames: CameraFrameRecords | undefined;
  private bucket: TokenBucket | undefined;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly inFlight = new Map<number, InFlight>();
  private nextBatchId = 1;
  private ratio = 3;
  private dailyCapLogged = false;
  private pausedForDailyCap = false;
  private readonly recentAcks: { at: number; bytes: number }[] = [];
  /** Per reason of a refused shore status: when it was last logged as a warning, and how many since. */
  private readonly statusRefusals = new Map<string, { loggedAt: number; since: number }>();

  constructor(options: SyncSenderOptions) {
    this.options = options;
    this.log = options.logger;
  }

  get state(): SyncSenderState {
    return { connected: this.link?.connected ?? false, inFlight: this.inFlight.size, pausedForDailyCap: this.pausedForDailyCap };
  }

  /** Connects (in the background) and starts sending. Throws PW_E_CONFIG_INVALID for an unusable URL or TLS file. */
  async start(): Promise<void> {
    const o = this.options;
    this.outbox = new Outbox(o.outbox, o.instrument);
    this.bucket = new TokenBucket({ bytesPerSecond: o.bytesPerSecond, burstBytes: Math.max(o.maxBatchBytes + 512, o.bytesPerSecond) });
    if (!o.shoreKey) {
      this.log.warn({ code: 'PW_E_SYNC_STATUS_NO_KEY', topic: shoreStatusTopic(o.topicPrefix, o.instrument) }, ERRORS.PW_E_SYNC_STATUS_NO_KEY.message);
    }
    this.link = new MqttLink({
      ...o.link,
      maximumPacketSize: SHIP_MAX_PACKET_BYTES,
      subscriptions: [{ topic: shoreStatusTopic(o.topicPrefix, o.instrument), qos: 0 }],
      onMessage: (topic, payload) => this.onShoreStatus(payload),
      onConnectionChange: (up) => this.onConnectionChange(up),
      outageCode: 'PW_E_SYNC_LINK',
      configKey: 'sync',
      logger: this.log,
    });
    await this.link.start();
    if (o.nav) {
      this.nav = new NavRecords({ outbox: o.outbox, instrument: o.instrument, ...o.nav, onQueued: () => this.wake(), logger: this.log });
      this.nav.start();
    }
    if (o.cameraFrames) {
      this.cameraFrames = new CameraFrameRecords({ outbox: o.outbox, instrument: o.instrument, ...o.cameraFrames, onQueued: () => this.wake(), logger: this.log });
      this.cameraFrames.start();
    }
    this.running = true;
    this.loopDone = this.loop().catch((err: unknown) => {
      this.log.error({ err, code: 'PW_E_INTERNAL' }, 'sync sender stopped on an unexpected error');
    });
  }

  /** Something was queued: look now rather than at the next poll. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /** Stops sending; batches in flight stay in the outbox and go again at the next start. */
  async stop(): Promise<void> {
    this.running = false;
    this.nav?.stop();
    this.cameraFrames?.stop();
    this.wake();
    await this.link?.stop();
    await this.loopDone;
    this.link = undefined;
  }

  status(): OutboxStatus {
    if (!this.outbox) throw new PlankwatchError('PW_E_INTERNAL', 'SyncSender not started');
    return this.outbox.status();
  }

  private async loop(): Promise<void> {
    const o = this.options;
    const link = this.link!;
    const outbox = this.outbox!;
    const topic = batchTopic(o.topicPrefix, o.instrument);
    while (this.running) {
      if (!link.connected) {
        await link.waitConnected();
        continue;
      }
      this.expireInFlight();
      if (this.inFlight.size >= o.maxInFlight) {
        await this.sleep(1000);
        continue;
      }
      const now = Date.now();
      if (o.dailyBytes > 0 && outbox.dailyBytes(utcDay(now)) >= o.dailyBytes) {
        this.noteDailyCap(now);
        await this.sleep(Math.min(60_000, msToUtcMidnight(now) + 1000));
        continue;
      }
      this.pausedForDailyCap = false;
      this.dailyCapLogged = false;
      const exclude = new Set<number>();
      for (const f of this.inFlight.values()) for (const s of f.seqs) exclude.add(s);
      const take = {
        maxRecords: o.maxBatchRecords,
        maxRawBytes: Math.max(1024, Math.floor(o.maxBatchBytes * this.ratio * 0.9)),
        exclude,
        holdBefore: now - o.countsHoldMs,
        now,
      };
      const hold = outbox.holdFor({ ...take, maxDelayMs: o.maxDelayMs ?? 0 });
      if (hold > 0) {
        await this.sleep(hold);
        continue;
      }
      const rows = outbox.claim(take);
      if (rows.length === 0) {
        await this.sleep(o.idlePollMs ?? 1000);
        continue;
      }
      const pieces = await this.pack(rows);
      for (const piece of pieces) {
        if (!this.running) return;
        await this.send(topic, piece);
      }
    }
  }

  /** Builds batch messages from rows, halving any whose compressed size exceeds maxBatchBytes. */
  private async pack(rows: OutboxRow[]): Promise<Piece[]> {
    const o = this.options;
    const parts: string[] = [];
    for (const row of rows) parts.push(await this.recordJson(row));
    const build = (from: number, to: number): Piece[] => {
      const json = `{"v":1,"instrument":${JSON.stringify(o.instrument)},"sentAt":${Date.now()},"records":[${parts.slice(from, to).join(',')}]}`;
      const payload = encodeBatch(json, o.compression);
      if (payload.length > o.maxBatchBytes && to - from > 1) {
        const mid = from + Math.floor((to - from) / 2);
        return [...build(from, mid), ...build(mid, to)];
      }
      const raw = Buffer.byteLength(json);
      this.ratio = Math.min(20, Math.max(1, 0.7 * this.ratio + 0.3 * (raw / payload.length)));
      return [{ rows: rows.slice(from, to), json, payload }];
    };
    return build(0, rows.length);
  }

  private async recordJson(row: OutboxRow): Promise<string> {
    let data = row.payload;
    if (row.kind === 'thumbnail') data = JSON.stringify(await this.thumbnail(JSON.parse(row.payload) as ThumbnailPayload));
    return `{"seq":${row.seq},"kind":"${row.kind}","key":${JSON.stringify(row.key)},"at":${row.createdAt},"data":${data}}`;
  }

  private async thumbnail(t: ThumbnailPayload): Promise<ThumbnailPayload> {
    const settings = this.options.thumbnails;
    if (!settings) return { ...t, missing: true };
    try {
      const image = await readFrameImage(t.relPath, t.sha256, settings.imageDirs);
      if (!image) throw new PlankwatchError('PW_E_SYNC_THUMBNAIL', 'image not found');
      const { data, info } = await sharp(image.bytes)
        .grayscale()
        .resize(settings.size, settings.size, { fit: 'inside', withoutEnlargement: true })
        .jpeg({ quality: 70 })
        .toBuffer({ resolveWithObject: true });
      return { ...t, format: 'jpeg', width: info.width, height: info.height, data: data.toString('base64') };
    } catch (err) {
      this.log.warn({ code: 'PW_E_SYNC_THUMBNAIL', file: t.relPath, err }, ERRORS.PW_E_SYNC_THUMBNAIL.message);
      return { ...t, missing: true };
    }
  }

  private async send(topic: string, piece: Piece): Promise<void> {
    const o = this.options;
    const wire = publishWireBytes(topic, piece.payload.length);
    for (;;) {
      const delay = this.bucket!.delayFor(wire);
      if (delay <= 0 || !this.running) break;
      await this.sleep(delay);
    }
    if (!this.running) return;
    this.bucket!.take(wire);
    this.outbox!.addDailyBytes(utcDay(Date.now()), wire);
    let predictionRaw = 0;
    let predictions = 0;
    for (const r of piece.rows) {
      if (r.kind === 'prediction') {
        predictions++;
        predictionRaw += r.bytes;
      }
    }
    const rawBytes = Buffer.byteLength(piece.json);
    const flight: InFlight = {
      id: this.nextBatchId++,
      seqs: piece.rows.map((r) => r.seq),
      predictions,
      rawBytes,
      predictionRawBytes: predictionRaw,
      wireBytes: wire,
      deadline: Date.now() + o.ackTimeoutMs,
    };
    this.inFlight.set(flight.id, flight);
    this.log.debug({ batch: flight.id, records: flight.seqs.length, wireBytes: wire, rawBytes }, 'sync batch sent');
    this.link!.publish(topic, piece.payload, { qos: 1 }).then(
      () => this.onAck(flight),
      (err: unknown) => {
        this.inFlight.delete(flight.id);
        if (this.running) this.log.debug({ err, batch: flight.id }, 'sync batch not acknowledged; its records stay queued');
        this.wake();
      },
    );
  }

  private onAck(flight: InFlight): void {
    this.inFlight.delete(flight.id);
    const now = Date.now();
    this.recentAcks.push({ at: now, bytes: flight.wireBytes });
    while (this.recentAcks.length > 0 && this.recentAcks[0]!.at < now - 60_000) this.recentAcks.shift();
    const span = Math.max(1, (now - (this.recentAcks[0]?.at ?? now)) / 1000);
    const rate = this.recentAcks.length > 1 ? this.recentAcks.slice(1).reduce((n, a) => n + a.bytes, 0) / span : flight.wireBytes;
    try {
      this.outbox?.markAcked({
        seqs: flight.seqs,
        predictions: flight.predictions,
        predictionWireBytes: flight.rawBytes > 0 ? (flight.wireBytes * flight.predictionRawBytes) / flight.rawBytes : 0,
        wireBytes: flight.wireBytes,
        rawBytes: flight.rawBytes,
        rateBps: rate,
        now,
      });
    } catch (err) {
      // The database may be closing at stop; the rows stay unacknowledged and go again.
      this.log.warn({ err, code: 'PW_E_DB' }, 'could not mark a sync batch acknowledged; it will be sent again');
    }
    this.wake();
  }

  /** Batches without an acknowledgement past their deadline become eligible again. */
  private expireInFlight(): void {
    const now = Date.now();
    for (const [id, f] of this.inFlight) {
      if (f.deadline <= now) {
        this.inFlight.delete(id);
        this.log.debug({ batch: id }, 'sync batch not acknowledged in time; its records will be sent again');
      }
    }
  }

  private onConnectionChange(up: boolean): void {
    if (!up) return;
    // MQTT.js resends unacknowledged batches after a reconnect: give them a fresh deadline.
    const deadline = Date.now() + this.options.ackTimeoutMs;
    for (const f of this.inFlight.values()) f.deadline = deadline;
    this.wake();
  }

  /**
   * A message on the shore-status topic. Nothing in it is trusted until it passed, in order: the
   * size cap (before parsing), every field's type, this instrument, the signature (with a key), and
   * the outbox's own checks (not more than was ever sent, newer than the last one applied).
   */
  private onShoreStatus(payload: Buffer): void {
    const o = this.options;
    const parsed = parseShoreStatus(payload);
    if (!parsed.ok) {
      this.refuseStatus('PW_E_SYNC_STATUS_REJECTED', parsed.fault, { detail: parsed.detail, bytes: payload.length });
      return;
    }
    const status = parsed.status;
    const claimed = { instrument: status.instrument, contiguousThrough: status.contiguousThrough, maxSeq: status.maxSeq, generatedAt: status.generatedAt };
    if (status.instrument !== o.instrument) {
      this.refuseStatus('PW_E_SYNC_STATUS_REJECTED', 'instrument', { detail: `the status is for another instrument than ${o.instrument}`, claimed });
      return;
    }
    if (o.shoreKey) {
      if (parsed.sig === null) {
        this.refuseStatus('PW_E_SYNC_STATUS_AUTH', 'unsigned', { detail: 'the status carries no signature and sync.shoreKeyFile is set', claimed });
        return;
      }
      if (!verifyShoreStatus(status, parsed.sig, o.shoreKey)) {
        this.refuseStatus('PW_E_SYNC_STATUS_AUTH', 'bad-signature', { detail: 'the signature does not match the key in sync.shoreKeyFile', claimed });
        return;
      }
    }
    try {
      const r = this.outbox!.applyShoreStatus(status, o.resendAfterMs);
      if (r.refused) {
        const { reason, detail, ...about } = r.refused;
        // A status at most a minute older than the last one is another ingester's, or the retained
        // one again after a reconnect: not worth a warning.
        const quiet = reason === 'duplicate' || (reason === 'stale' && (about.olderByMs ?? 0) <= 60_000);
        this.refuseStatus('PW_E_SYNC_STATUS_REJECTED', reason, { detail, claimed, ...about }, quiet);
        return;
      }
      if (r.resent > 0) this.log.info({ resent: r.resent, missing: status.missing.length }, 'the shore lacks records the broker acknowledged; sending them again');
      this.log.debug({ deleted: r.deleted, resent: r.resent, through: status.contiguousThrough }, 'shore status applied');
      if (r.resent > 0) this.wake();
    } catch (err) {
      this.log.warn({ err, code: 'PW_E_DB' }, 'could not apply the shore status');
    }
  }

  /** Logs a refused status: a warning per reason at most once a minute (with how many since), the rest at debug. */
  private refuseStatus(code: 'PW_E_SYNC_STATUS_REJECTED' | 'PW_E_SYNC_STATUS_AUTH', reason: string, fields: Record<string, unknown>, quiet = false): void {
    const now = Date.now();
    const seen = this.statusRefusals.get(reason);
    if (quiet || (seen && now - seen.loggedAt < 60_000)) {
      if (seen && !quiet) seen.since++;
      this.log.debug({ code, reason, ...fields }, 'shore status ignored');
      return;
    }
    this.statusRefusals.set(reason, { loggedAt: now, since: 0 });
    this.log.warn({ code, reason, ...fields, ...(seen?.since ? { alsoIgnoredSinceLastWarning: seen.since } : {}) }, ERRORS[code].message);
  }

  private noteDailyCap(now: number): void {
    this.pausedForDailyCap = true;
    if (this.dailyCapLogged) return;
    this.dailyCapLogged = true;
    this.log.warn({ code: 'PW_E_SYNC_DAILY_CAP', dailyBytes: this.options.dailyBytes, resumeInS: Math.round(msToUtcMidnight(now) / 1000) }, ERRORS.PW_E_SYNC_DAILY_CAP.message);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
