// systemd readiness and watchdog notifications (sd_notify), sent with the systemd-notify tool
// because Node has no Unix datagram sockets. A no-op when NOTIFY_SOCKET is unset.
import { execFile } from 'node:child_process';
import type { Logger } from '../log.js';

export interface NotifierOptions {
  env: NodeJS.ProcessEnv;
  logger: Logger;
}

export class SystemdNotifier {
  private readonly options: NotifierOptions;
  private warned = false;

  constructor(options: NotifierOptions) {
    this.options = options;
  }

  get enabled(): boolean {
    return Boolean(this.options.env.NOTIFY_SOCKET);
  }

  /** Watchdog interval from WATCHDOG_USEC, halved as systemd recommends; undefined when off. */
  watchdogIntervalMs(): number | undefined {
    const usec = Number(this.options.env.WATCHDOG_USEC);
    return this.enabled && usec > 0 ? Math.max(500, Math.floor(usec / 2000)) : undefined;
  }

  ready(status: string): Promise<void> {
    return this.send(['--ready', `--status=${status}`]);
  }

  watchdog(): Promise<void> {
    return this.send(['WATCHDOG=1']);
  }

  stopping(): Promise<void> {
    return this.send(['STOPPING=1']);
  }

  private send(args: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    return new Promise((resolve) => {
      execFile('systemd-notify', [`--pid=${process.pid}`, ...args], { env: this.options.env, timeout: 5000 }, (err) => {
        if (err && !this.warned) {
          this.warned = true;
          this.options.logger.warn({ err }, 'systemd-notify failed; readiness and watchdog pings are not reaching systemd');
        }
        resolve();
      });
    });
  }
}
