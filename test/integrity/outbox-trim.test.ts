// The outbox forgets a record only when it was sent, the broker acknowledged it, and an
// authenticated, well-formed shore status confirms it. Against a real Mosquitto, with the ship's
// real SQLite file and the real sender (the last tests also run the real shore ingester): a status
// claiming more than was ever sent, one covering rows never sent or never acknowledged, garbled,
// wrong-typed, oversized (18 MB, 3 M ranges), unsigned, wrongly signed and replayed statuses.
import { execFile, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/log.js';
import { ShoreIngester } from '../../src/shore/ingester.js';
import { SqliteShoreDriver } from '../../src/shore/sqlite.js';
import { ShoreStore } from '../../src/shore/store.js';
import { enqueueLabel, Outbox } from '../../src/sync/outbox.js';
import type { SyncSender, SyncSenderOptions } from '../../src/sync/sender.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { openShip, sha, shipContent, startSender, tmp, until, WINDOW_MS, type Ship } from '../sync/helpers.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const TOPIC = 'plankwatch-sync/cam-a/shore-status';
const KEY = 'b9c7e1a0d5f84c2e9a3b6d7f1e0c4a8b5d2f9e6c3a7b1d4e8f0a2c5b9d6e3f7a';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Line = Record<string, unknown>;

/** A debug-level logger whose lines the test reads. */
function capture(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { logger, lines };
}

interface Status {
  v: number;
  instrument: string;
  contiguousThrough: number;
  maxSeq: number;
  records: number;
  missing: [number, number][];
  truncated: boolean;
  generatedAt: number;
  sig?: string;
}

function status(fields: Partial<Status> = {}): Status {
  return { v: 1, instrument: 'cam-a', contiguousThrough: 0, maxSeq: 0, records: 0, missing: [], truncated: false, generatedAt: Date.now(), ...fields };
}

/** The documented signature: HMAC-SHA256, hex, over a fixed header line and the fields in a fixed order. */
function sign(s: Status, key = KEY): Status {
  const text = `plankwatch-shore-status/v1\n${JSON.stringify([s.v, s.instrument, s.contiguousThrough, s.maxSeq, s.records, s.missing, s.truncated, s.generatedAt])}`;
  return { ...s, sig: createHmac('sha256', key).update(text).digest('hex') };
}

interface Row {
  seq: number;
  sent: number;
  acked: number;
}

function outboxRows(ship: Ship): Row[] {
  return ship.store.database
    .prepare(`SELECT seq, sent_at IS NOT NULL AS sent, acked_at IS NOT NULL AS acked FROM sync_outbox WHERE instrument = 'cam-a' ORDER BY seq`)
    .all() as Row[];
}

/** `plankwatch sync status --json` on the ship's database, from the source. */
async function syncStatusCommand(ship: Ship, dir: string, brokerUrl: string): Promise<{ shoreThrough: number; awaitingShore: number; lastSeq: number }> {
  const config = path.join(dir, 'ship.yaml');
  writeFileSync(config, `instrument:\n  id: cam-a\nstore:\n  path: ${ship.dbPath}\nsync:\n  enabled: true\n  url: ${brokerUrl}\n`);
  const { stdout } = await promisify(execFile)(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'src/cli.ts'), 'sync', 'status', '--json', '--config', config], {
    cwd: REPO_ROOT,
  });
  return JSON.parse(stdout) as { shoreThrough: number; awaitingShore: number; lastSeq: number };
}

interface Backlog {
  broker: Mosquitto;
  ship: Ship;
  dir: string;
  /** Every seq up to here went out and was acknowledged by the broker. */
  ackedThrough: number;
  /** The highest seq ever sent (an in-flight batch that was never acknowledged). */
  maxSent: number;
  lastSeq: number;
}

/**
 * A ship whose outbox holds, in seq order: records sent and acknowledged by the broker; label
 * changes never sent; records of a batch that went out but was never acknowledged (its daemon was
 * killed); records never sent.
 */
async function backlog(): Promise<Backlog> {
  const dir = tmp('trim');
  const broker = await startMosquitto(await freePort());
  cleanups.push(() => broker.kill());
  const ship = openShip(dir, 'cam-a');
  cleanups.push(() => ship.close());
  // Every frame (40 ms apart) inside one counts window: a window boundary among them would add a
  // second counts row at the end of the outbox, claimed first by priority, and leave no record
  // after the in-flight batch (it failed when the clock put a boundary in the last write batch).
  const base = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + 1_000;
  ship.write(0, 60, 25, base);
  const first = await startSender(ship, broker.url, { resendAfterMs: 3_600_000 });
  const ackedThrough = shipContent(ship.dbPath).lastSeq;
  await until(() => {
    const s = first.status();
    return (s.queued.records === 0 && s.lastAckedSeq === ackedThrough) || undefined;
  }, 30_000, 'the first records to be acknowledged');
  await first.stop();
  const outbox = ship.store.outboxRepository();
  const at = Date.now();
  for (let i = 0; i < 5; i++) enqueueLabel(outbox, { instrument: 'cam-a', sha256: sha('cam-a', i), state: 'validated', label: 'copepod_calanoid', by: 'anna', at: at + i });
  ship.write(60, 100, 25, base);
  // A batch claimed (marked sent) whose PUBACK never came: the daemon was killed with it in flight.
  const inFlight = new Outbox(outbox, 'cam-a').claim({ maxRecords: 20, maxRawBytes: 1e9, exclude: new Set(), holdBefore: at + 1e6, now: at });
  const maxSent = Math.max(...inFlight.map((r) => r.seq));
  const lastSeq = shipContent(ship.dbPath).lastSeq;
  const rows = outboxRows(ship);
  // The shape the tests rely on: acknowledged, never sent below the in-flight batch, in flight, never sent.
  expect(rows.filter((r) => r.acked).map((r) => r.seq)).toEqual(Array.from({ length: ackedThrough }, (_, i) => i + 1));
  expect(rows.some((r) => !r.sent && r.seq < maxSent)).toBe(true);
  expect(rows.filter((r) => r.sent && !r.acked)).toHaveLength(20);
  expect(rows.some((r) => !r.sent && r.seq > maxSent)).toBe(true);
  return { broker, ship, dir, ackedThrough, maxSent, lastSeq };
}

/**
 * The sender that will receive the statuses: connected, subscribed, and paused by a daily cap
 * already spent, so the outbox changes only by what the statuses do. Ready once it has handled a
 * retained probe status (which holds nothing and so deletes nothing).
 */
async function listeningSender(b: Backlog, lines: Line[], logger: Logger, overrides: Partial<SyncSenderOptions> = {}, key: string | null = null): Promise<{ sender: SyncSender; spoofer: MqttClient }> {
  const spoofer = await connectAsync(b.broker.url, { protocolVersion: 5, clientId: 'spoofer' });
  cleanups.push(() => spoofer.endAsync());
  const probe = status({ generatedAt: Date.now() - 30_000 });
  await spoofer.publishAsync(TOPIC, JSON.stringify(key ? sign(probe, key) : probe), { qos: 1, retain: true });
  const sender = await startSender(b.ship, b.broker.url, { dailyBytes: 1, resendAfterMs: 3_600_000, logger, ...overrides });
  cleanups.push(() => sender.stop());
  await until(() => lines.some((l) => l.msg === 'shore status applied') || undefined, 15_000, 'the probe status to be applied');
  expect(sender.state.pausedForDailyCap).toBe(true);
  return { sender, spoofer };
}

/** Publishes a status and waits until the sender has handled it (applied or rejected), or 5 s. */
async function deliver(spoofer: MqttClient, lines: Line[], payload: string | Buffer | Status): Promise<void> {
  const from = lines.length;
  await spoofer.publishAsync(TOPIC, typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload), { qos: 1 });
  await until(
    () => lines.slice(from).some((l) => l.msg === 'shore status applied' || String(l.code ?? '').startsWith('PW_E_SYNC_STATUS')) || undefined,
    5000,
    'the status to be handled',
  ).catch(() => undefined);
}

/** The real shore ingester on a SQLite file, publishing its statuses every 500 ms, signed with `key`. */
async function startSigningShore(dir: string, url: string, key: string): Promise<ShoreStore> {
  const store = new ShoreStore(new SqliteShoreDriver({ path: path.join(dir, 'shore.db') }));
  await store.open();
  const ingester = new ShoreIngester({
    store,
    link: { url, clientId: 'shore-1', reconnectPeriodMs: 500, keepaliveS: 10, connectTimeoutMs: 5000 },
    group: 'shore',
    topicPrefix: 'plankwatch-sync',
    statusIntervalMs: 500,
    retryMs: 200,
    statusKey: key,
    logger: pino({ level: 'silent' }),
  });
  await ingester.start();
  cleanups.push(async () => {
    await ingester.stop();
    await store.close();
  });
  return store;
}

function codes(lines: Line[]): string[] {
  return lines.map((l) => String(l.code ?? '')).filter((c) => c.startsWith('PW_E_SYNC_STATUS'));
}

describe('the outbox trims only what was sent, acknowledged and confirmed by the shore', () => {
  it('ignores a status claiming more than was ever sent, logs it with a code, and sync status does not show it', async () => {
    const b = await backlog();
    const { lines, logger } = capture();
    const { spoofer } = await listeningSender(b, lines, logger);
    const before = outboxRows(b.ship);

    await deliver(spoofer, lines, status({ contiguousThrough: 100_000_000, maxSeq: 100_000_000, records: 100_000_000, generatedAt: Date.now() }));

    expect(outboxRows(b.ship)).toEqual(before);
    const rejected = lines.find((l) => l.code === 'PW_E_SYNC_STATUS_REJECTED');
    expect(rejected).toBeDefined();
    expect(JSON.stringify(rejected)).toContain('100000000');
    const shown = await syncStatusCommand(b.ship, b.dir, b.broker.url);
    expect(shown.shoreThrough).toBe(0);
    expect(shown.awaitingShore).toBe(b.ackedThrough);
    // Without a key, the sender said once, at start, that statuses are not authenticated.
    expect(codes(lines).filter((c) => c === 'PW_E_SYNC_STATUS_NO_KEY')).toHaveLength(1);
  });

  it('a status covering rows never sent or never acknowledged deletes only the acknowledged ones', async () => {
    const b = await backlog();
    const { lines, logger } = capture();
    const { spoofer } = await listeningSender(b, lines, logger);
    const before = outboxRows(b.ship);

    // Claims everything up to the highest seq ever sent: not a lie about what left the ship, but
    // it covers label rows never sent and a batch the broker never acknowledged.
    await deliver(spoofer, lines, status({ contiguousThrough: b.maxSent, maxSeq: b.maxSent, records: b.maxSent, generatedAt: Date.now() }));

    const expected = before.filter((r) => !(r.sent && r.acked && r.seq <= b.maxSent));
    expect(outboxRows(b.ship)).toEqual(expected);
    expect(expected.filter((r) => !r.sent).length).toBe(b.lastSeq - b.ackedThrough - 20);
    const shown = await syncStatusCommand(b.ship, b.dir, b.broker.url);
    expect(shown.shoreThrough).toBe(b.maxSent);
    expect(shown.awaitingShore).toBe(0);
  });

  it('garbled, wrong-typed and oversized statuses lose nothing, are logged with a code, and do not blow the memory', async () => {
    const b = await backlog();
    const { lines, logger } = capture();
    const { spoofer } = await listeningSender(b, lines, logger);
    const before = outboxRows(b.ship);
    const through = b.ackedThrough;

    const bad: (string | Buffer | Status)[] = [
      '{"v":1,"instrument":"cam-a","contiguousThrough":',
      Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
      JSON.stringify({ ...status({ generatedAt: Date.now() }), contiguousThrough: String(through) }),
      JSON.stringify({ ...status({ contiguousThrough: through, generatedAt: Date.now() }), maxSeq: 'all', records: 'all', truncated: 'yes' }),
      status({ contiguousThrough: through - 0.5, maxSeq: through, generatedAt: Date.now() }),
      JSON.stringify({ ...status({ contiguousThrough: through, maxSeq: through, generatedAt: Date.now() }), missing: [[1, 'x']] }),
      JSON.stringify({ ...status({ contiguousThrough: through, maxSeq: through }), generatedAt: 'soon' }),
      JSON.stringify([status({ contiguousThrough: through })]),
      // 80 KB: over the status cap, under what the broker is asked to deliver.
      status({ contiguousThrough: through, maxSeq: through, records: through, missing: Array.from({ length: 10_000 }, () => [through + 1, through + 1]), generatedAt: Date.now() }),
    ];
    const results: { payload: string; lost: number; coded: boolean }[] = [];
    for (const payload of bad) {
      const from = lines.length;
      const rowsBefore = outboxRows(b.ship).length;
      await deliver(spoofer, lines, payload);
      const text = (typeof payload === 'string' || Buffer.isBuffer(payload) ? payload.toString() : JSON.stringify(payload)).slice(0, 100);
      results.push({ payload: text, lost: rowsBefore - outboxRows(b.ship).length, coded: codes(lines.slice(from)).includes('PW_E_SYNC_STATUS_REJECTED') });
    }
    const afterBad = outboxRows(b.ship);

    // 18 MB, 3 M ranges, from another process (so that only the ship's memory is measured here).
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    const script = `
      import { connectAsync } from 'mqtt';
      const [url, topic, through] = process.argv.slice(1);
      const head = '{"v":1,"instrument":"cam-a","contiguousThrough":' + through + ',"maxSeq":' + through + ',"records":' + through + ',"missing":[';
      const body = '[1,2],'.repeat(3000000) + '[1,2]';
      const payload = head + body + '],"truncated":false,"generatedAt":' + Date.now() + '}';
      const c = await connectAsync(url, { protocolVersion: 5, clientId: 'big-spoofer' });
      await c.publishAsync(topic, payload, { qos: 1 });
      await c.endAsync();
      process.stdout.write(String(payload.length));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, b.broker.url, TOPIC, String(b.lastSeq)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let sent = '';
    child.stdout.on('data', (d: Buffer) => (sent += d.toString()));
    await new Promise((resolve) => child.once('exit', resolve));
    expect(Number(sent)).toBeGreaterThan(18_000_000);
    // Whatever the ship makes of it, it has it by the time it handles the next status.
    const from = lines.length;
    const good = status({ contiguousThrough: through, maxSeq: through, records: through, generatedAt: Date.now() });
    await spoofer.publishAsync(TOPIC, JSON.stringify(good), { qos: 1 });
    await until(() => lines.slice(from).some((l) => l.msg === 'shore status applied' && l.through === through) || undefined, 60_000, 'the good status after the big one');
    clearInterval(sampler);
    const grownMb = (rssPeak - rssBefore) / 1024 / 1024;
    console.log(`RSS grew by ${grownMb.toFixed(0)} MB while an 18 MB status was published`);
    expect(results).toEqual(results.map((r) => ({ ...r, lost: 0, coded: true })));
    expect(afterBad).toEqual(before);
    expect(grownMb).toBeLessThan(64);

    // The big status took nothing; the good one trimmed the acknowledged rows and nothing else.
    expect(outboxRows(b.ship)).toEqual(before.filter((r) => !(r.acked && r.seq <= through)));
  }, 120_000);

  it('with a key: unsigned, wrongly signed and replayed statuses are ignored; correctly signed ones trim', async () => {
    const b = await backlog();
    const { lines, logger } = capture();
    const { sender, spoofer } = await listeningSender(b, lines, logger, { shoreKey: KEY }, KEY);
    expect(codes(lines)).not.toContain('PW_E_SYNC_STATUS_NO_KEY');
    const before = outboxRows(b.ship);
    const through = b.ackedThrough;
    const claim = (fields: Partial<Status> = {}): Status => status({ contiguousThrough: through, maxSeq: through, records: through, generatedAt: Date.now(), ...fields });

    let from = lines.length;
    await deliver(spoofer, lines, claim());
    expect(outboxRows(b.ship)).toEqual(before);
    expect(codes(lines.slice(from))).toContain('PW_E_SYNC_STATUS_AUTH');

    from = lines.length;
    await deliver(spoofer, lines, sign(claim(), 'another shore key, not this ship\'s at all'));
    expect(outboxRows(b.ship)).toEqual(before);
    expect(codes(lines.slice(from))).toContain('PW_E_SYNC_STATUS_AUTH');

    // A correctly signed status whose content was changed after signing.
    from = lines.length;
    await deliver(spoofer, lines, { ...sign(claim({ contiguousThrough: 10, maxSeq: 10, records: 10 })), contiguousThrough: through, maxSeq: through });
    expect(outboxRows(b.ship)).toEqual(before);
    expect(codes(lines.slice(from))).toContain('PW_E_SYNC_STATUS_AUTH');

    // Signed by the shore's key: it trims.
    const now = Date.now();
    await deliver(spoofer, lines, sign(claim({ generatedAt: now })));
    expect(outboxRows(b.ship)).toEqual(before.filter((r) => !(r.acked && r.seq <= through)));
    expect(sender.status().shoreThrough).toBe(through);

    // An older signed status, replayed: ignored, and sync status keeps the newer one.
    from = lines.length;
    await deliver(spoofer, lines, sign(claim({ contiguousThrough: 10, maxSeq: 12, records: 11, missing: [[11, 11]], generatedAt: now - 10 * 60_000 })));
    expect(codes(lines.slice(from))).toContain('PW_E_SYNC_STATUS_REJECTED');
    const shown = await syncStatusCommand(b.ship, b.dir, b.broker.url);
    expect(shown.shoreThrough).toBe(through);
    expect(shown.awaitingShore).toBe(0);
  });

  it('with the same key on both sides, the real shore ingester\'s signed statuses drain the outbox', async () => {
    const dir = tmp('trim-shore');
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    await startSigningShore(dir, broker.url, KEY);
    const ship = openShip(dir, 'cam-a');
    cleanups.push(() => ship.close());
    ship.write(0, 80);
    const { lines, logger } = capture();
    const sender = await startSender(ship, broker.url, { shoreKey: KEY, logger });
    cleanups.push(() => sender.stop());
    const lastSeq = shipContent(ship.dbPath).lastSeq;
    await until(() => {
      const s = sender.status();
      return (s.queued.records === 0 && s.awaitingShore === 0 && s.shoreThrough === lastSeq) || undefined;
    }, 60_000, 'the signed shore status to confirm every record');
    expect(codes(lines.filter((l) => Number(l.level) >= 40))).toEqual([]);
  });

  it('a shore signing with another key confirms nothing: every record stays in the outbox', async () => {
    const dir = tmp('trim-shore');
    const broker = await startMosquitto(await freePort());
    cleanups.push(() => broker.kill());
    const store = await startSigningShore(dir, broker.url, 'a different secret held by some other shore installation');
    const ship = openShip(dir, 'cam-a');
    cleanups.push(() => ship.close());
    ship.write(0, 80);
    const { lines, logger } = capture();
    const sender = await startSender(ship, broker.url, { shoreKey: KEY, logger });
    cleanups.push(() => sender.stop());
    const lastSeq = shipContent(ship.dbPath).lastSeq;
    // The shore stores everything and reports it, signed with its own key.
    await until(async () => (await store.gaps('cam-a')).contiguousThrough === lastSeq || undefined, 60_000, 'the shore to hold every record');
    await until(() => codes(lines).includes('PW_E_SYNC_STATUS_AUTH') || undefined, 10_000, 'the ship to reject the shore\'s status');
    await new Promise((r) => setTimeout(r, 1500));
    const s = sender.status();
    expect(s.queued.records).toBe(0);
    expect(s.awaitingShore).toBe(lastSeq);
    expect(s.shoreThrough).toBe(0);
  });
});
