// The shore store on SQLite and on a real PostgreSQL server (started by the test in a temporary
// folder): idempotent upserts (a batch applied twice changes nothing, also when two ingesters
// apply it at once), counts merged by maximum whatever the order, latest label wins, gap report;
// and the PostgreSQL statements generated from the same text.
import { describe, expect, it } from 'vitest';
import { forDialect, SHORE_SCHEMA, toNumberedParams } from '../../src/shore/sql.js';
import { gapReport, ShoreStore } from '../../src/shore/store.js';
import type { PredictionPayload, SyncBatch, SyncRecord } from '../../src/sync/records.js';
import { shoreDrivers } from '../helpers/shore-drivers.js';

const SHA = 'a'.repeat(64);

function counts(seq: number, n: number): SyncRecord {
  return { seq, kind: 'counts', key: '60000:0', at: 0, data: { windowMs: 60_000, windowStart: 0, windowEnd: 60_000, total: n, counts: { copepod: n } } };
}
function label(seq: number, state: 'validated' | 'dubious', l: string, at: number): SyncRecord {
  return { seq, kind: 'label', key: `${SHA}@${at}`, at, data: { sha256: SHA, state, label: l, by: 'anna', at } };
}
function prediction(seq: number, i: number): SyncRecord {
  const sha256 = i.toString(16).padStart(64, '0');
  const data: PredictionPayload = {
    sha256,
    relPath: `2026/11/29/roi-${i}.png`,
    bytes: 1000 + i,
    width: 40,
    height: 60,
    area: 900,
    format: 'png',
    arrivedAt: 1_764_000_000_000 + i,
    classifiedAt: 1_764_000_000_100 + i,
    ensembleVersion: '2026-11-29.2',
    label: i % 2 ? 'copepod_calanoid' : 'detritus_other',
    probability: 0.8123,
    margin: 0.5,
    disagreement: 0,
    topK: [['copepod_calanoid', 0.8123], ['detritus_other', 0.1]],
    members: [['vgg48', 'v4', 'copepod_calanoid', 0.8]],
  };
  return { seq, kind: 'prediction', key: `${sha256}:2026-11-29.2`, at: data.classifiedAt, data };
}
function batch(records: SyncRecord[], instrument = 'cam-a'): SyncBatch {
  return { v: 1, instrument, sentAt: 0, records };
}

/** PostgreSQL returns BIGINT and count(*) as strings: compare rows as numbers. */
function numeric(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v])));
}

const drivers = shoreDrivers('shore-store');

describe.each(drivers)('shore store on $name', (driver) => {
  async function open(location?: string): Promise<ShoreStore> {
    const s = driver.store(location ?? (await driver.fresh()));
    await s.open();
    return s;
  }

  it('a batch applied twice is stored once', async () => {
    const s = await open();
    const b = batch([counts(1, 5), label(2, 'validated', 'copepod', 10)]);
    expect(await s.apply(b)).toEqual({ added: 2, duplicates: 0 });
    expect(await s.apply(b)).toEqual({ added: 0, duplicates: 2 });
    expect(numeric(await s.query('SELECT count(*) AS n FROM shore_label_events'))).toEqual([{ n: 1 }]);
    await s.close();
  });

  it('counts keep the largest snapshot and labels the latest sequence, whatever the arrival order', async () => {
    const s = await open();
    await s.apply(batch([counts(3, 9), label(4, 'dubious', 'detritus', 20)]));
    await s.apply(batch([counts(1, 5), label(2, 'validated', 'copepod', 10)]));
    expect(numeric(await s.query('SELECT count FROM shore_counts'))).toEqual([{ count: 9 }]);
    expect(numeric(await s.query('SELECT state, label, seq FROM shore_labels'))).toEqual([{ state: 'dubious', label: 'detritus', seq: 4 }]);
    await s.close();
  });

  it('reports gaps per instrument: leading, inner, and none once filled', async () => {
    const s = await open();
    await s.apply(batch([counts(3, 1), counts(4, 2), counts(8, 3)]));
    await s.apply(batch([counts(1, 1)], 'cam-b'));
    const g = await s.gaps('cam-a');
    expect(g).toMatchObject({ records: 3, maxSeq: 8, contiguousThrough: 0, missing: [[1, 2], [5, 7]], truncated: false });
    await s.apply(batch([counts(1, 1), counts(2, 1), counts(5, 1), counts(6, 1), counts(7, 1)]));
    expect(await s.gaps('cam-a')).toMatchObject({ records: 8, contiguousThrough: 8, missing: [] });
    expect(await s.gaps('cam-b')).toMatchObject({ records: 1, contiguousThrough: 1, missing: [] });
    expect(await s.instruments()).toEqual(['cam-a', 'cam-b']);
    await s.close();
  });

  it('two ingesters applying the same batches at once store every record once', async () => {
    const location = await driver.fresh();
    const a = await open(location);
    const b = await open(location);
    const records = Array.from({ length: 200 }, (_, i) => prediction(i + 1, i));
    const batches = Array.from({ length: 10 }, (_, k) => batch(records.slice(k * 20, (k + 1) * 20)));
    const results = await Promise.all(batches.flatMap((x) => [a.apply(x), b.apply(x)]));
    expect(results.reduce((n, r) => n + r.added, 0)).toBe(200);
    expect(results.reduce((n, r) => n + r.duplicates, 0)).toBe(200);
    expect(numeric(await b.query('SELECT count(*) AS n FROM shore_predictions'))).toEqual([{ n: 200 }]);
    const rows = await a.query<Record<string, unknown>>('SELECT label, probability, rel_path, top_k FROM shore_predictions WHERE seq = 8');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ label: 'copepod_calanoid', probability: 0.8123, rel_path: '2026/11/29/roi-7.png' });
    expect(await a.gaps('cam-a')).toMatchObject({ records: 200, contiguousThrough: 200, missing: [] });
    await a.close();
    await b.close();
  });
});

describe('shore statements', () => {
  it('truncates a long gap list and keeps contiguousThrough at the first gap', () => {
    const gaps = Array.from({ length: 5 }, (_, i) => ({ gap_from: 10 * i + 2, gap_to: 10 * i + 3 }));
    const r = gapReport('x', { records: 30, max_seq: 60, min_seq: 1, last_received_at: 5 }, gaps, 0, 3);
    expect(r.missing).toEqual([[2, 3], [12, 13], [22, 23]]);
    expect(r.truncated).toBe(true);
    expect(r.contiguousThrough).toBe(1);
  });

  it('generates PostgreSQL statements: numbered parameters, GREATEST, the same upserts', () => {
    const pg = forDialect('postgres');
    expect(pg.record).toContain('VALUES ($1, $2, $3, $4, $5, $6)');
    expect(pg.record).toContain('ON CONFLICT (instrument, seq) DO NOTHING');
    expect(pg.count).toContain('GREATEST(shore_counts.count, excluded.count)');
    expect(pg.prediction).toContain('$19)');
    expect(pg.gaps).toContain('instrument = $1 AND seq >= $2');
    expect(pg.gaps).toContain('LIMIT $3');
    expect(pg.label).toContain('WHERE excluded.seq > shore_labels.seq');
    for (const sql of Object.values(pg)) expect(sql).not.toContain('?');
    expect(forDialect('sqlite').count).toContain('max(shore_counts.count, excluded.count)');
    expect(toNumberedParams('a = ? AND b = ?')).toBe('a = $1 AND b = $2');
    for (const ddl of SHORE_SCHEMA) expect(ddl).toMatch(/^CREATE (TABLE|INDEX) IF NOT EXISTS/);
  });
});
