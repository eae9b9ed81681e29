// Polls tables that other stages fill (navigation series, camera frames) while the sync stage
// runs, queueing what is new into the outbox: `queue` does one pass in its own transaction and
// says how many records it queued. A failed pass is logged and tried again at the next poll.
import type { Logger } from '../log.js';

export interface TablePollerOptions {
  /** How often to look for new rows (default 2000 ms). */
  pollMs?: number;
  /** Called after something was queued (wakes the sender). */
  onQueued?: () => void;
  logger: Logger;
  now?: () => number;
}

export class TablePoller {
  private readonly options: TablePollerOptions;
  private readonly queue: (now: number) => number;
  private readonly what: string;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  /** `what` names the records in the warning, e.g. "navigation records". */
  constructor(options: TablePollerOptions, queue: (now: number) => number, what: string) {
    this.options = options;
    this.queue = queue;
    this.what = what;
  }

  start(): void {
    this.running = true;
    this.poll();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private poll(): void {
    if (!this.running) return;
    const o = this.options;
    try {
      if (this.queue((o.now ?? Date.now)()) > 0) o.onQueued?.();
    } catch (err) {
      o.logger.warn({ err, code: 'PW_E_DB' }, `could not queue ${this.what} for the shore; trying again`);
    }
    this.timer = setTimeout(() => this.poll(), o.pollMs ?? 2000);
    this.timer.unref();
  }
}
