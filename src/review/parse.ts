// Checking what arrives over HTTP for the review API: query strings and JSON bodies. Every problem
// is a PW_E_REVIEW_REQUEST error whose message names the field.
import { PlankwatchError } from '../errors.js';
import { BULK_MAX, LABEL_PATTERN, QUEUE_MAX_LIMIT, type LabelAction, type LabelRequest, type LabelStatus, type QueueFilter } from './review-types.js';

const SHA256 = /^[0-9a-f]{64}$/;
const ACTIONS: readonly LabelAction[] = ['confirm', 'correct', 'dubious'];
const STATUSES: readonly LabelStatus[] = ['predicted', 'validated', 'dubious'];
const DURATION = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

function bad(message: string): PlankwatchError {
  return new PlankwatchError('PW_E_REVIEW_REQUEST', message);
}

type Query = Record<string, unknown>;

function one(query: Query, key: string): string | undefined {
  const v = query[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw bad(`${key}: give it once, as text.`);
  return v;
}

/**
 * A point in time: ms since the epoch, an ISO 8601 time, or a duration back from `now`
 * (`90s`, `30m`, `6h`, `2d`).
 */
export function parseTime(text: string, key: string, now: number): number {
  const t = text.trim();
  if (/^\d{10,}$/.test(t)) return Number(t);
  const d = DURATION.exec(t);
  if (d) return Math.round(now - Number(d[1]) * UNIT_MS[d[2] as keyof typeof UNIT_MS]);
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw bad(`${key}: "${text}" is neither ms since the epoch, an ISO time, nor a duration (30m, 6h, 2d).`);
  return ms;
}

function intParam(query: Query, key: string, min: number, max: number): number | undefined {
  const v = one(query, key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw bad(`${key}: must be a whole number, got "${v}".`);
  const n = Number(v);
  if (n < min || n > max) throw bad(`${key}: must be between ${min} and ${max}, got ${n}.`);
  return n;
}

export function parseSha256(value: unknown, key = 'sha256'): string {
  if (typeof value !== 'string' || !SHA256.test(value)) throw bad(`${key}: must be 64 lowercase hex digits.`);
  return value;
}

/** GET /api/review/queue?label=&since=&until=&status=&limit=&offset= */
export function parseQueueQuery(query: Query, now: number): QueueFilter {
  const filter: QueueFilter = {};
  const label = one(query, 'label');
  if (label !== undefined) filter.label = label;
  const since = one(query, 'since');
  if (since !== undefined) filter.since = parseTime(since, 'since', now);
  const until = one(query, 'until');
  if (until !== undefined) filter.until = parseTime(until, 'until', now);
  const status = one(query, 'status');
  if (status !== undefined) {
    const list = status === 'all' ? [...STATUSES] : status.split(',').map((s) => s.trim());
    for (const s of list) if (!STATUSES.includes(s as LabelStatus)) throw bad(`status: "${s}" is not one of ${STATUSES.join(', ')}, all.`);
    filter.status = list as LabelStatus[];
  }
  const limit = intParam(query, 'limit', 1, QUEUE_MAX_LIMIT);
  if (limit !== undefined) filter.limit = limit;
  const offset = intParam(query, 'offset', 0, Number.MAX_SAFE_INTEGER);
  if (offset !== undefined) filter.offset = offset;
  return filter;
}

/** GET /api/counts?since=&bucketS= */
export function parseCountsQuery(query: Query, now: number): { since: number; bucketS: number | undefined } {
  const since = one(query, 'since');
  return { since: since === undefined ? now - 3_600_000 : parseTime(since, 'since', now), bucketS: intParam(query, 'bucketS', 1, 86_400 * 7) };
}

function checkUser(value: unknown, key: string): string {
  if (typeof value !== 'string') throw bad(`${key}: required, the name of who reviews (1 to 64 characters).`);
  const user = value.trim();
  if (user.length < 1 || user.length > 64 || /[\u0000-\u001f\u007f]/.test(user)) throw bad(`${key}: must be 1 to 64 printable characters.`);
  return user;
}

function checkLabel(value: unknown, key: string): string {
  if (typeof value !== 'string' || !LABEL_PATTERN.test(value)) {
    throw bad(`${key}: must be a class name: a letter or digit, then letters, digits, "_", "-" or "." (at most 100).`);
  }
  return value;
}

function checkObject(value: unknown, key: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`${key}: must be a JSON object.`);
  return value as Record<string, unknown>;
}

const ITEM_KEYS = new Set(['sha256', 'action', 'label', 'user', 'newClass']);

function labelItem(raw: Record<string, unknown>, at: string, userFallback?: string): LabelRequest {
  for (const k of Object.keys(raw)) if (!ITEM_KEYS.has(k)) throw bad(`${at}${k}: unknown field (known: ${[...ITEM_KEYS].join(', ')}).`);
  const sha256 = parseSha256(raw.sha256, `${at}sha256`);
  const action = raw.action;
  if (typeof action !== 'string' || !ACTIONS.includes(action as LabelAction)) throw bad(`${at}action: must be one of ${ACTIONS.join(', ')}.`);
  const request: LabelRequest = { sha256, action: action as LabelAction, user: checkUser(raw.user ?? userFallback, `${at}user`) };
  if (raw.label !== undefined) request.label = checkLabel(raw.label, `${at}label`);
  else if (action === 'correct') throw bad(`${at}label: required for action "correct".`);
  if (raw.newClass !== undefined) {
    if (typeof raw.newClass !== 'boolean') throw bad(`${at}newClass: must be true or false.`);
    request.newClass = raw.newClass;
  }
  return request;
}

/** POST /api/labels: `{ sha256, action, label?, user, newClass? }` */
export function parseLabelBody(body: unknown): LabelRequest {
  return labelItem(checkObject(body, 'body'), '');
}

/**
 * POST /api/labels/bulk: `{ user, items: [{ sha256, action, label?, newClass? }] }`. Each item may
 * carry its own `user`; otherwise the top-level one applies.
 */
export function parseBulkBody(body: unknown): LabelRequest[] {
  const b = checkObject(body, 'body');
  for (const k of Object.keys(b)) if (k !== 'user' && k !== 'items') throw bad(`${k}: unknown field (known: user, items).`);
  if (!Array.isArray(b.items) || b.items.length === 0) throw bad('items: must be a non-empty array.');
  if (b.items.length > BULK_MAX) throw bad(`items: at most ${BULK_MAX} per request, got ${b.items.length}.`);
  const user = b.user === undefined ? undefined : checkUser(b.user, 'user');
  return b.items.map((item, i) => labelItem(checkObject(item, `items[${i}]`), `items[${i}].`, user));
}
