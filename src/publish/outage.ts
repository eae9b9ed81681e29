// Connection state and outage reporting shared by both MQTT connections (the live publisher's,
// src/publish/mqtt.ts, and sync's persistent link, src/sync/link.ts): the connected flag and its
// change callback, one warning per outage carrying the first error seen during it, and how long
// the outage lasted when the broker is back. How each connection reconnects stays its own.
import { ERRORS, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';

export interface OutageOptions {
  /** Logged once per outage, with its message from the error table. */
  code: ErrorCode;
  /** The broker URL as it may be logged (password removed). */
  url: string;
  logger: Logger;
  onConnectionChange?: (connected: boolean) => void;
}

export class OutageTracker {
  private readonly options: OutageOptions;
  private isConnected = false;
  private reported = false;
  private since: number | null = null;
  private firstError: Error | undefined;

  constructor(options: OutageOptions) {
    this.options = options;
  }

  /** True between a connect and the next loss of the connection. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** The client is connecting for the first time: time spent until the connect counts as down. */
  starting(): void {
    this.since = Date.now();
  }

  /** A client error: logged at debug level, and the first one of an outage is kept for its warning. */
  error(err: Error): void {
    this.options.logger.debug({ err }, 'MQTT client error');
    this.firstError ??= err;
  }

  /** Connected. Returns the outage this ends, or null when none was reported. */
  up(): { downS: number } | null {
    const ended = this.reported ? { downS: this.since === null ? 0 : Math.round((Date.now() - this.since) / 1000) } : null;
    this.reported = false;
    this.since = null;
    this.firstError = undefined;
    this.set(true);
    return ended;
  }

  /** The connection is lost (or never came): warns once per outage, unless it is being stopped. */
  down(stopping: boolean): void {
    this.set(false);
    if (stopping) return;
    this.since ??= Date.now();
    if (this.reported) return;
    this.reported = true;
    const { code, url, logger } = this.options;
    logger.warn({ code, url, err: this.firstError }, ERRORS[code].message);
  }

  private set(connected: boolean): void {
    if (this.isConnected === connected) return;
    this.isConnected = connected;
    try {
      this.options.onConnectionChange?.(connected);
    } catch (err) {
      this.options.logger.error({ err, code: 'PW_E_INTERNAL' }, 'onConnectionChange handler failed');
    }
  }
}
