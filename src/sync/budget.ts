// The bandwidth budget: a token bucket for bytes per second and a cap per UTC day.

export interface TokenBucketOptions {
  /** Refill rate, bytes per second; 0 = unlimited. */
  bytesPerSecond: number;
  /** Most bytes that may go out in one burst (default: one second's worth, at least 1). */
  burstBytes?: number;
  now?: () => number;
}

/**
 * Classic token bucket. `delayFor(n)` says how long to wait before sending n bytes; `take(n)`
 * spends them. A message larger than the burst goes out once the bucket is full, leaving it in
 * debt, so the long-run rate still holds.
 */
export class TokenBucket {
  private readonly rate: number;
  private readonly burst: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;

  constructor(options: TokenBucketOptions) {
    this.rate = options.bytesPerSecond;
    this.burst = Math.max(1, options.burstBytes ?? options.bytesPerSecond);
    this.now = options.now ?? Date.now;
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** Milliseconds to wait before `bytes` may be sent (0: now). */
  delayFor(bytes: number): number {
    if (this.rate <= 0) return 0;
    this.refill();
    const needed = Math.min(bytes, this.burst);
    if (this.tokens >= needed) return 0;
    return Math.ceil(((needed - this.tokens) / this.rate) * 1000);
  }

  take(bytes: number): void {
    if (this.rate <= 0) return;
    this.refill();
    this.tokens -= bytes;
  }

  private refill(): void {
    const t = this.now();
    const elapsed = Math.max(0, t - this.last) / 1000;
    this.last = t;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
  }
}

/** Milliseconds from `now` to the next midnight UTC. */
export function msToUtcMidnight(now: number): number {
  const d = new Date(now);
  const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  return next - now;
}
