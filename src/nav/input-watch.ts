// How the navigation inputs fare: bad lines counted and logged (rate-limited), inputs going up and
// down, the feed going silent (PW_E_NAV_STALE), and what /health says of it all.
import type { Logger } from '../log.js';

export interface NavStats {
  sentences: number;
  bad: number;
  ignored: number;
  clockJumps: number;
  fixes: number;
  envSamples: number;
  tagged: number;
  retagged: number;
  /** Samples dropped after the database refused them for too long (a full disk). */
  dropped: number;
  inputs: Record<string, boolean>;
  lastFixAt: number | null;
}

export interface InputWatchOptions {
  log: Logger;
  stats: NavStats;
  maxGapS: number;
  /** A bad line, for the metrics. */
  onBad?: (source: string) => void;
}

export class InputWatch {
  private readonly badLog = new Map<string, { at: number; suppressed: number }>();
  private timer: NodeJS.Timeout | undefined;
  /** When the latest position fix was received (computer clock). */
  private lastFixReceived = 0;
  private stale = false;

  constructor(private readonly o: InputWatchOptions) {}

  /** Checks for silence every 5 s while `inputs()` is above 0. */
  start(inputs: () => number): void {
    this.lastFixReceived = Date.now();
    this.timer = setInterval(() => this.checkStale(inputs()), 5_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Counted always; logged at most once per 10 s per input, with how many were not logged. */
  bad(source: string, reason: string, line: string): void {
    this.o.stats.bad++;
    this.o.onBad?.(source);
    const now = Date.now();
    const last = this.badLog.get(source);
    if (last && now - last.at < 10_000) {
      last.suppressed++;
      return;
    }
    this.badLog.set(source, { at: now, suppressed: 0 });
    this.o.log.warn({ code: 'PW_E_NAV_SENTENCE', source, reason, line: line.slice(0, 100), notLogged: last?.suppressed ?? 0 }, `dropped a navigation sentence from ${source}: ${reason}`);
  }

  /** An input went up or down: logged on each change. */
  state(source: string, up: boolean, err?: unknown): void {
    const was = this.o.stats.inputs[source];
    this.o.stats.inputs[source] = up;
    if (was === up) return;
    if (up) this.o.log.info({ source }, `navigation input ${source} is up`);
    else this.o.log.warn({ code: 'PW_E_NAV_INPUT', source, err }, `navigation input ${source} is down; retrying`);
  }

  /** A position fix came. */
  fix(receivedAt: number, source: string): void {
    this.lastFixReceived = receivedAt;
    if (!this.stale) return;
    this.stale = false;
    this.o.log.info({ source }, 'navigation fixes are arriving again');
  }

  /** No position fix for longer than maxGapS while inputs are configured: warned once per outage. */
  checkStale(inputs: number): void {
    if (inputs === 0 || this.stale) return;
    const silentS = (Date.now() - this.lastFixReceived) / 1000;
    if (silentS <= this.o.maxGapS) return;
    this.stale = true;
    this.o.log.warn({ code: 'PW_E_NAV_STALE', silentS: Math.round(silentS), inputs: this.o.stats.inputs }, `no position fix for ${Math.round(silentS)} s; ROIs are tagged held or missing until fixes return`);
  }

  health(inputs: number): { ok: boolean; detail: string } {
    const all = Object.entries(this.o.stats.inputs);
    const up = all.filter(([, u]) => u).map(([s]) => s);
    if (inputs > 0 && up.length === 0) return { ok: false, detail: `PW_E_NAV_INPUT: every navigation input is down (${all.map(([s]) => s).join(', ') || 'none opened yet'})` };
    if (this.stale) return { ok: false, detail: `PW_E_NAV_STALE: no position fix for over ${this.o.maxGapS} s` };
    return { ok: true, detail: up.length > 0 ? `inputs up: ${up.join(', ')}` : 'no live inputs (sidecars only)' };
  }
}
