// The outbox without a broker: rows commit with the results, sequence numbers are contiguous,
// a busy window costs one row until sent, priorities order the claim, the shore's gap report
// deletes and resends.
import { describe, expect, it } from 'vitest';
import { enqueueLabel, Outbox } from '../../src/sync/outbox.js';
import { frame, openShip, sha, tmp, WINDOW_MS } from './helpers.js';

describe('sync outbox', () => {
  it('queues prediction, counts and model rows in the store transaction, with contiguous seqs', () => {
    const ship = openShip(tmp('outbox'), 'cam-a');
    const t0 = 1_800_000_000_000;
    ship.write(0, 10, 5, t0);
    const db = ship.store.database;
    const rows = db.prepare(`SELECT seq, kind, key FROM sync_outbox ORDER BY seq`).all() as { seq: number; kind: string; key: string }[];
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    expect(rows.filter((r) => r.kind === 'prediction')).toHaveLength(10);
    expect(rows.filter((r) => r.kind === 'model')).toHaveLength(1);
    // Two batches in one window, nothing sent yet: one counts row, rewritten in place.
    const counts = rows.filter((r) => r.kind === 'counts');
    expect(counts).toHaveLength(1);
    const payload = JSON.parse((db.prepare(`SELECT payload FROM sync_outbox WHERE kind = 'counts'`).get() as { payload: string }).payload) as { total: number };
    expect(payload.total).toBe(10);
    // A frame stored again adds nothing.
    ship.store.recordClassified([frame('cam-a', 3, t0)]);
    expect((db.prepare(`SELECT count(*) AS n FROM sync_outbox`).get() as { n: number }).n).toBe(rows.length);
    ship.close();
  });

  it('rolls the outbox rows back with the results when the transaction fails', () => {
    const ship = openShip(tmp('outbox'), 'cam-a');
    const bad = frame('cam-a', 1, Date.now());
    (bad.prediction as { topK: unknown }).topK = [{ label: 'x', probability: 1n }]; // JSON.stringify throws on BigInt
    expect(() => ship.store.recordClassified([frame('cam-a', 0, Date.now()), bad])).toThrow();
    const db = ship.store.database;
    expect((db.prepare(`SELECT count(*) AS n FROM sync_outbox`).get() as { n: number }).n).toBe(0);
    expect((db.prepare(`SELECT count(*) AS n FROM frames`).get() as { n: number }).n).toBe(0);
    ship.close();
  });

  it('claims counts first, then predictions, then labels; a sent counts row is frozen', () => {
    const ship = openShip(tmp('outbox'), 'cam-a');
    const db = ship.store.database;
    // Both batches below (t0 and t0 + 1 s) must fall in one counts window: start just after the
    // current window began, not at a moment that may sit just before its end.
    const t0 = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + 1_000;
    ship.write(0, 4, 4, t0);
    enqueueLabel(ship.store.outboxRepository(), { instrument: 'cam-a', sha256: sha('cam-a', 0), state: 'validated', label: 'copepod_calanoid', by: 'anna', at: t0 });
    const outbox = new Outbox(ship.store.outboxRepository(), 'cam-a');
    const claimed = outbox.claim({ maxRecords: 3, maxRawBytes: 1e9, exclude: new Set(), holdBefore: t0 + 1e6, now: t0 });
    expect(claimed.map((r) => r.kind)).toEqual(['counts', 'model', 'prediction']);
    const rest = outbox.claim({ maxRecords: 100, maxRawBytes: 1e9, exclude: new Set(claimed.map((r) => r.seq)), holdBefore: t0 + 1e6, now: t0 });
    expect(rest.map((r) => r.kind)).toEqual(['prediction', 'prediction', 'prediction', 'label']);
    // The counts row went out: the next batch in that window gets a new seq.
    ship.write(4, 6, 2, t0 + 1000);
    const counts = db.prepare(`SELECT seq, payload FROM sync_outbox WHERE kind = 'counts' ORDER BY seq`).all() as { seq: number; payload: string }[];
    expect(counts).toHaveLength(2);
    expect((JSON.parse(counts[1]!.payload) as { total: number }).total).toBe(6);
    ship.close();
  });

  it('holds a busy counts row back for countsHold, but not other rows', () => {
    const ship = openShip(tmp('outbox'), 'cam-a');
    const t0 = Date.now();
    ship.write(0, 2, 2, t0);
    const outbox = new Outbox(ship.store.outboxRepository(), 'cam-a');
    const claimed = outbox.claim({ maxRecords: 100, maxRawBytes: 1e9, exclude: new Set(), holdBefore: t0 - 10_000, now: t0 });
    expect(claimed.map((r) => r.kind)).not.toContain('counts');
    expect(claimed).toHaveLength(3);
    ship.close();
  });

  it('applies the shore status: deletes what the shore holds, resends what it lacks after resendAfter', () => {
    const ship = openShip(tmp('outbox'), 'cam-a');
    // The 8 frames (40 ms apart) must fall in one counts window, or a second counts row appears.
    const t0 = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + 1_000;
    ship.write(0, 8, 8, t0); // seqs 1..10 (model, 8 predictions, counts)
    const outbox = new Outbox(ship.store.outboxRepository(), 'cam-a');
    // The counts row is stamped by the store's own clock while writing (a loaded machine can take
    // milliseconds): hold back nothing, so all 10 rows are claimed.
    const rows = outbox.claim({ maxRecords: 100, maxRawBytes: 1e9, exclude: new Set(), holdBefore: Date.now() + 60_000, now: t0 });
    expect(rows).toHaveLength(10);
    outbox.markAcked({ seqs: rows.map((r) => r.seq), predictions: 8, predictionWireBytes: 800, wireBytes: 1000, rawBytes: 4000, rateBps: 500, now: t0 });
    expect(outbox.status().queued.records).toBe(0);
    expect(outbox.status().awaitingShore).toBe(10);
    // The shore has 1..4 and 7, lacks 5..6 and 8..10. A report made too soon after the ack resends nothing.
    const report = { v: 1 as const, instrument: 'cam-a', contiguousThrough: 4, maxSeq: 7, records: 5, missing: [[5, 6]] as [number, number][], truncated: false };
    expect(outbox.applyShoreStatus({ ...report, generatedAt: t0 + 1000 }, 5000)).toEqual({ deleted: 4, resent: 0 });
    expect(outbox.applyShoreStatus({ ...report, generatedAt: t0 + 6000 }, 5000)).toEqual({ deleted: 0, resent: 5 });
    const status = outbox.status();
    expect(status.queued.records).toBe(5);
    expect(status.shoreThrough).toBe(4);
    expect(status.bytesPerRoi).toBe(100);
    expect(status.compressionRatio).toBe(4);
    ship.close();
  });

  it('enqueueLabel rejects an unknown state and a bad sha256', () => {
    const ship = openShip(tmp('outbox'), 'cam-a');
    const outbox = ship.store.outboxRepository();
    expect(() => enqueueLabel(outbox, { instrument: 'cam-a', sha256: sha('cam-a', 1), state: 'maybe' as 'validated', label: 'x' })).toThrow(/state/);
    expect(() => enqueueLabel(outbox, { instrument: 'cam-a', sha256: 'abc', state: 'validated', label: 'x' })).toThrow(/sha256/);
    ship.close();
  });
});
