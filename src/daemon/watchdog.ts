// systemd watchdog pings that stop when the pipeline is stuck: a ping is sent on each tick if the
// pipeline is idle or has settled at least one file since the previous tick. A pipeline that holds
// files but settles none for a whole WatchdogSec lets systemd restart the daemon.
import type { Logger } from '../log.js';
import type { Part } from '../types.js';

export interface ProgressWatchdogOptions {
  intervalMs: number;
  /** A number that grows whenever a file is settled. */
  progress: () => number;
  /** True while files are waiting or in flight. */
  busy: () => boolean;
  ping: () => Promise<void>;
  logger: Logger;
}

export class ProgressWatchdog implements Part {
  readonly name = 'watchdog';
  private readonly options: ProgressWatchdogOptions;
  private timer: NodeJS.Timeout | undefined;
  private lastProgress = -1;
  private stalled = false;

  constructor(options: ProgressWatchdogOptions) {
    this.options = options;
  }

  start(): void {
    this.lastProgress = this.options.progress();
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
    void this.options.ping();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check; exposed for tests. Returns whether a ping was sent. */
  async tick(): Promise<boolean> {
    const progress = this.options.progress();
    const moved = progress !== this.lastProgress;
    this.lastProgress = progress;
    if (moved || !this.options.busy()) {
      if (this.stalled) this.options.logger.info('pipeline progressing again; watchdog pings resumed');
      this.stalled = false;
      await this.options.ping();
      return true;
    }
    if (!this.stalled) this.options.logger.warn('pipeline holds files but settled none in the last watchdog interval; withholding the watchdog ping');
    this.stalled = true;
    return false;
  }
}
