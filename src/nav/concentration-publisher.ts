// Recomputes the concentration windows that changed, every nav.concentrations.intervalS, and hands
// each window's message and the depth profile to the publisher.
import type { Logger } from '../log.js';
import type { NavRepository, RoiPosition } from '../store/index.js';
import { computeWindow, profileOf } from './concentrations.js';
import { concentrationsPayload, positionPayload, profilePayload, type ConcentrationsPayload, type PositionPayload, type ProfilePayload } from './payloads.js';

/** Where the stage's MQTT messages go. */
export interface NavPublish {
  concentrations(payload: ConcentrationsPayload): void;
  /** Retained. */
  profile(payload: ProfilePayload): void;
  /** Retained. */
  position(payload: PositionPayload): void;
}

export interface ConcentrationPublisherOptions {
  repository: NavRepository;
  instrument: string;
  windowMs: number;
  binM: number;
  profileMs: number;
  intervalMs: number;
  logger: Logger;
  publish?: NavPublish;
  now: () => number;
}

/** Windows recomputed per tick at most (a backlog is worked off over several ticks). */
const MAX_WINDOWS = 200;

export class ConcentrationPublisher {
  private readonly dirty = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private latestEnd = 0;
  private position: PositionPayload | null = null;
  private positionSentAt = 0;
  private positionDirty = false;

  constructor(private readonly o: ConcentrationPublisherOptions) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.dirty.size > 0) this.tick();
    await Promise.resolve();
  }

  /** Capture times whose windows changed; the latest ROI's tag for the position topic. */
  touch(times: readonly number[], latest?: RoiPosition): void {
    for (const t of times) this.dirty.add(Math.floor(t / this.o.windowMs) * this.o.windowMs);
    if (latest) {
      this.position = positionPayload(latest);
      this.positionDirty = true;
      // At most one position message a second; the tick sends the last one held back.
      if (Date.now() - this.positionSentAt >= 1000) this.sendPosition();
    }
  }

  private sendPosition(): void {
    if (!this.position || !this.positionDirty) return;
    this.positionDirty = false;
    this.positionSentAt = Date.now();
    this.o.publish?.position(this.position);
  }

  /** Computes the changed windows (oldest first), publishes them and the profile. Never throws. */
  tick(): void {
    this.sendPosition();
    if (this.dirty.size === 0) return;
    const starts = [...this.dirty].sort((a, b) => a - b).slice(0, MAX_WINDOWS);
    try {
      const now = this.o.now();
      for (const start of starts) {
        this.dirty.delete(start);
        const rows = computeWindow(this.o.repository, this.o.windowMs, start, this.o.binM, now);
        this.latestEnd = Math.max(this.latestEnd, start + this.o.windowMs);
        const payload = concentrationsPayload(this.o.instrument, this.o.binM, rows);
        if (payload) this.o.publish?.concentrations(payload);
      }
      this.o.publish?.profile(this.profile());
    } catch (err) {
      this.o.logger.error({ err, code: 'PW_E_DB' }, 'concentrations could not be computed; tried again at the next change');
    }
  }

  /** The depth profile over the profile span before the latest window with data. */
  profile(): ProfilePayload {
    const to = this.latestEnd;
    const from = Math.max(0, to - this.o.profileMs);
    const rows = this.o.repository.concentrations(this.o.windowMs, from, this.o.binM);
    return profilePayload(this.o.instrument, from, to, this.o.binM, profileOf(rows), this.position);
  }
}
