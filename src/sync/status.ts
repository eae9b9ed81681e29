// The shore status message, retained on <prefix>/<instrument>/shore-status: what the shore holds of
// one ship's records. The shore fits it under a size cap and signs it; the ship refuses anything
// over the cap unread, checks every field's type and the ranges' order, and verifies the signature
// before the message may trim the outbox. Ship (src/sync) and shore (src/shore) both use this file.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ShoreStatus } from './records.js';

/** Largest status payload the ship reads; a larger one is rejected before parsing. */
export const SHORE_STATUS_MAX_BYTES = 64 * 1024;
/** Most missing ranges one status may list; the shore cuts its list (and sets `truncated`) to stay within this and the byte cap. */
export const SHORE_STATUS_MAX_RANGES = 1000;
/**
 * The ship's MQTT 5 Maximum Packet Size: the broker drops (never sends) anything larger, so a huge
 * status neither crosses the link nor reaches memory. Above the status cap, so that a status a
 * little too large still arrives and is rejected with a code in the ship's log.
 */
export const SHIP_MAX_PACKET_BYTES = 4 * SHORE_STATUS_MAX_BYTES;
/** Shortest key accepted from sync.shoreKeyFile and shore.statusKeyFile. */
export const STATUS_KEY_MIN_CHARS = 32;

const SIGNED_HEADER = 'plankwatch-shore-status/v1\n';
const MAX_INSTRUMENT_CHARS = 200;

/** A status as it travels: the report and, when the shore has a key, its HMAC-SHA256 (hex). */
export interface SignedShoreStatus extends ShoreStatus {
  sig?: string;
}

/** Why a status payload was refused before any check against the outbox. */
export type StatusFault = 'too-large' | 'not-json' | 'malformed';

export type ParsedShoreStatus = { ok: true; status: ShoreStatus; sig: string | null } | { ok: false; fault: StatusFault; detail: string };

/** The bytes the signature covers: a fixed header and every field, in a fixed order. */
function signedText(s: ShoreStatus): string {
  return SIGNED_HEADER + JSON.stringify([s.v, s.instrument, s.contiguousThrough, s.maxSeq, s.records, s.missing, s.truncated, s.generatedAt]);
}

/** HMAC-SHA256 of the status under the shared key, lowercase hex. */
export function signShoreStatus(status: ShoreStatus, key: string): string {
  return createHmac('sha256', key).update(signedText(status)).digest('hex');
}

/** True when `sig` is the status's signature under `key` (compared in constant time). */
export function verifyShoreStatus(status: ShoreStatus, sig: string, key: string): boolean {
  const expected = Buffer.from(signShoreStatus(status, key), 'hex');
  const given = Buffer.from(sig, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * The payload the shore publishes: the status, its missing list cut (and `truncated` set) until
 * the whole fits SHORE_STATUS_MAX_BYTES and SHORE_STATUS_MAX_RANGES, signed when there is a key.
 * Null when even an empty list does not fit (an instrument id of tens of kilobytes).
 */
export function shoreStatusPayload(status: ShoreStatus, key: string | null): string | null {
  let fitted: ShoreStatus = status;
  if (fitted.missing.length > SHORE_STATUS_MAX_RANGES) fitted = { ...fitted, missing: fitted.missing.slice(0, SHORE_STATUS_MAX_RANGES), truncated: true };
  for (;;) {
    const out: SignedShoreStatus = key === null ? fitted : { ...fitted, sig: signShoreStatus(fitted, key) };
    const text = JSON.stringify(out);
    if (Buffer.byteLength(text) <= SHORE_STATUS_MAX_BYTES) return text;
    if (fitted.missing.length === 0) return null;
    fitted = { ...fitted, missing: fitted.missing.slice(0, Math.floor(fitted.missing.length / 2)), truncated: true };
  }
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Reads a status payload: refuses one over SHORE_STATUS_MAX_BYTES without parsing it, then checks
 * every field's type and that the missing ranges are ordered, disjoint and lie between
 * contiguousThrough and maxSeq. Checks against the outbox (what was sent, the last status
 * accepted) and the signature are the caller's.
 */
export function parseShoreStatus(payload: Buffer): ParsedShoreStatus {
  if (payload.length > SHORE_STATUS_MAX_BYTES) return { ok: false, fault: 'too-large', detail: `${payload.length} bytes, more than ${SHORE_STATUS_MAX_BYTES}` };
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    return { ok: false, fault: 'not-json', detail: (err as Error).message.slice(0, 200) };
  }
  const bad = (detail: string): ParsedShoreStatus => ({ ok: false, fault: 'malformed', detail });
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return bad('not a JSON object');
  const o = raw as Record<string, unknown>;
  if (o.v !== 1) return bad('v is not 1');
  if (typeof o.instrument !== 'string' || o.instrument.length === 0 || o.instrument.length > MAX_INSTRUMENT_CHARS) return bad('instrument is not a short string');
  for (const key of ['contiguousThrough', 'maxSeq', 'records'] as const) {
    if (!isCount(o[key])) return bad(`${key} is not a whole number >= 0`);
  }
  if (!isCount(o.generatedAt) || o.generatedAt === 0) return bad('generatedAt is not a time in ms');
  if (typeof o.truncated !== 'boolean') return bad('truncated is not true or false');
  if (o.sig !== undefined && (typeof o.sig !== 'string' || !/^[0-9a-f]{64}$/.test(o.sig))) return bad('sig is not 64 hex digits');
  const through = o.contiguousThrough as number;
  const maxSeq = o.maxSeq as number;
  if (through > maxSeq) return bad('contiguousThrough is above maxSeq');
  if (!Array.isArray(o.missing)) return bad('missing is not a list');
  if (o.missing.length > SHORE_STATUS_MAX_RANGES) return bad(`missing lists ${o.missing.length} ranges, more than ${SHORE_STATUS_MAX_RANGES}`);
  const missing: [number, number][] = [];
  let after = through;
  for (const range of o.missing as unknown[]) {
    if (!Array.isArray(range) || range.length !== 2 || !isCount(range[0]) || !isCount(range[1])) return bad('a missing range is not [from, to]');
    const [from, to] = range as [number, number];
    if (from <= after || to < from || to > maxSeq) return bad(`missing range [${from}, ${to}] is out of order or outside contiguousThrough..maxSeq`);
    missing.push([from, to]);
    after = to;
  }
  const status: ShoreStatus = {
    v: 1,
    instrument: o.instrument,
    contiguousThrough: through,
    maxSeq,
    records: o.records as number,
    missing,
    truncated: o.truncated,
    generatedAt: o.generatedAt,
  };
  return { ok: true, status, sig: typeof o.sig === 'string' ? o.sig : null };
}
