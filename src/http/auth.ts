// Bearer-token access rule for the HTTP server.
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Logger } from '../log.js';

/** Paths reachable without a token even when one is required (for probes and watchdogs). */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/health']);

/** True for addresses only this machine can reach: `localhost`, 127.0.0.0/8, `::1`. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return h.startsWith('::ffff:127.');
}

/** True when `authorization` is exactly `Bearer <token>` (compared in constant time). */
export function checkBearer(authorization: string | undefined, token: string): boolean {
  if (authorization === undefined) return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (match === null) return false;
  // Hash both sides so the comparison does not leak the token's length.
  const a = createHash('sha256').update(match[1]!).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/**
 * Whether one request may proceed. With no token configured everything is open (the server
 * refuses to start that way on a non-loopback host); with one, every path outside OPEN_PATHS
 * needs `Authorization: Bearer <token>`.
 */
export function requestAllowed(token: string | undefined, path: string, authorization: string | undefined): boolean {
  if (token === undefined || token === '') return true;
  if (OPEN_PATHS.has(path)) return true;
  return checkBearer(authorization, token);
}

export interface AuthThrottleOptions {
  /** Wrong tries from one address answered as usual before its first lockout (default 5). */
  freeTries?: number;
  /** The first lockout; each further wrong try doubles it (default 2 s). */
  firstLockoutMs?: number;
  /** The longest lockout (default 15 min). */
  maxLockoutMs?: number;
  now?: () => number;
}

/** What one wrong try did: how many in a row from that address, and the lockout it started (0: none yet). */
export interface WrongTry {
  failures: number;
  lockoutMs: number;
}

interface Tries {
  failures: number;
  lockedUntil: number;
  last: number;
}

/** An address is forgotten this long after its last wrong try or lockout. */
const FORGET_MS = 24 * 3_600_000;
/** Most addresses remembered (the oldest go first beyond it). */
const MAX_ADDRESSES = 10_000;

/**
 * Wrong tokens per client address (the login form and the bearer header alike, one secret): the
 * first few are answered as usual, then the address is locked out for firstLockoutMs, doubling with
 * each further wrong try up to maxLockoutMs. While locked out nothing from it is checked (a right
 * token too: otherwise a guess would still be told apart by its answer). A right token clears it.
 */
export class AuthThrottle {
  private readonly tries = new Map<string, Tries>();
  private readonly freeTries: number;
  private readonly firstLockoutMs: number;
  private readonly maxLockoutMs: number;
  private readonly now: () => number;
  private lastPrune = 0;

  constructor(options: AuthThrottleOptions = {}) {
    this.freeTries = options.freeTries ?? 5;
    this.firstLockoutMs = options.firstLockoutMs ?? 2000;
    this.maxLockoutMs = options.maxLockoutMs ?? 15 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Milliseconds left of this address's lockout; 0 when it may try. */
  lockedForMs(address: string): number {
    const t = this.tries.get(clientKey(address));
    return t === undefined ? 0 : Math.max(0, t.lockedUntil - this.now());
  }

  /** Counts a wrong try from `address`. */
  wrong(address: string): WrongTry {
    const now = this.now();
    this.prune(now);
    const key = clientKey(address);
    const t = this.tries.get(key) ?? { failures: 0, lockedUntil: 0, last: now };
    t.failures += 1;
    t.last = now;
    const over = t.failures - this.freeTries;
    const lockoutMs = over < 0 ? 0 : Math.min(this.maxLockoutMs, this.firstLockoutMs * 2 ** Math.min(over, 30));
    if (lockoutMs > 0) t.lockedUntil = now + lockoutMs;
    // Re-inserted: the map stays ordered by last wrong try, oldest first.
    this.tries.delete(key);
    this.tries.set(key, t);
    return { failures: t.failures, lockoutMs };
  }

  /** A right token from `address`: its count starts again. */
  right(address: string): void {
    this.tries.delete(clientKey(address));
  }

  private prune(now: number): void {
    if (now - this.lastPrune >= 60_000) {
      this.lastPrune = now;
      for (const [key, t] of this.tries) if (Math.max(t.last, t.lockedUntil) + FORGET_MS <= now) this.tries.delete(key);
    }
    for (const key of this.tries.keys()) {
      if (this.tries.size < MAX_ADDRESSES) break;
      this.tries.delete(key);
    }
  }
}

/** IPv4 seen through an IPv6 socket (`::ffff:10.0.0.5`) counts as the IPv4 address. */
function clientKey(address: string): string {
  return address.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
}

/**
 * Logs one wrong try under `code` (untrusted address under `ip`), and the lockout it started under
 * PW_E_HTTP_AUTH_LOCKED. The throttle bounds how often this runs per address.
 */
export function logWrongToken(log: Logger, code: 'PW_E_HTTP_AUTH' | 'PW_E_REVIEW_AUTH', ip: string, t: WrongTry, msg: string): void {
  log.warn({ code, ip, failures: t.failures }, msg);
  if (t.lockoutMs > 0) {
    log.warn({ code: 'PW_E_HTTP_AUTH_LOCKED', ip, failures: t.failures, lockoutS: Math.ceil(t.lockoutMs / 1000) }, `${t.failures} wrong tokens from ${ip}: locked out for ${Math.ceil(t.lockoutMs / 1000)} s`);
  }
}
