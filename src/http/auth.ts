// Bearer-token access rule for the HTTP server.
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';

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
