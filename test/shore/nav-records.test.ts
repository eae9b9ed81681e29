// The navigation series ashore, on SQLite and on a real PostgreSQL server: a later tag of a ROI
// wins whatever the arrival order, track and CTD points are stored once, volume cells of several
// records add up and a batch applied twice adds nothing; then an export reads the positions and
// the volume per window and depth bin from that database.
import { describe, expect, it } from 'vitest';
import type { PositionItem, PredictionPayload, SyncBatch, SyncRecord } from '../../src/sync/records.js';
import { shoreDrivers } from '../helpers/shore-drivers.js';

const T0 = Date.UTC(2026, 5, 3, 12, 0, 0);
const SHA = 'b'.repeat(64);

function batch(records: SyncRecord[]): SyncBatch {
  return { v: 1, instrument: 'cam-p', sentAt: 0, records };
}
function position(seq: number, lat: number, quality: string, taggedAt: number): SyncRecord {
  const item: PositionItem = [SHA, T0 + 5000, 'exif', lat, 179.9995, 12.5, 24.1, 36.2, quality, 'interpolated', taggedAt];
  return { seq, kind: 'positions', key: `${taggedAt}:1`, at: taggedAt, data: { items: [item] } };
}
const prediction: SyncRecord = {
  seq: 1,
  kind: 'prediction',
  key: `${SHA}:e1`,
  at: T0,
  data: { sha256: SHA, relPath: 'a.jpg', bytes: 10, width: 4, height: 4, area: 9, format: 'jpeg', arrivedAt: T0, classifiedAt: T0 + 10, ensembleVersion: 'e1', label: 'copepod_calanoid', probability: 0.9, margin: 0.8, disagreement: 0, topK: [['copepod_calanoid', 0.9]], members: [] } satisfies PredictionPayload,
};

const drivers = shoreDrivers('shore-nav');

describe.each(drivers)('navigation series ashore on $name', (driver) => {
  it('keeps the latest tag, each track point once, adds volume cells once, and exports them', async () => {
    const location = await driver.fresh();
    const s = driver.store(location);
    await s.open();
    await s.apply(batch([prediction]));
    // The re-tag arrives before the first tag: the later tag still wins.
    await s.apply(batch([position(3, 25.5, 'interpolated', T0 + 9000)]));
    await s.apply(batch([position(2, 25.4, 'held', T0 + 6000)]));
    const track: SyncRecord = { seq: 4, kind: 'track', key: 'f1:e1', at: T0, data: { fixes: [[T0, 25.4, 179.9995, 4.2], [T0 + 10_000, 25.41, -179.9995, null]], env: [[T0, 12.5, 24.1, 36.2]] } };
    const volumes = (seq: number, key: string, cells: [number, number | null, number][]): SyncRecord => ({ seq, kind: 'volumes', key, at: T0, data: { cellMs: 60_000, cellM: 0.5, cells } });
    const v1 = volumes(5, '1-10', [[T0, 10, 0.25], [T0, 12.5, 0.5], [T0, null, 0.125]]);
    const v2 = volumes(6, '11-20', [[T0, 12.5, 0.25], [T0 + 3_600_000, 12.5, 1]]);
    await s.apply(batch([track, v1, v2]));
    expect(await s.apply(batch([track, v1, v2]))).toEqual({ added: 0, duplicates: 3 });
    const num = (rows: Record<string, unknown>[]): Record<string, unknown>[] => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^-?[\d.]+$/.test(v) ? Number(v) : v])));
    expect(num(await s.query(`SELECT lat, quality, tagged_at FROM shore_positions`))).toEqual([{ lat: 25.5, quality: 'interpolated', tagged_at: T0 + 9000 }]);
    expect(num(await s.query(`SELECT t_ms, lon FROM shore_track ORDER BY t_ms`))).toEqual([{ t_ms: T0, lon: 179.9995 }, { t_ms: T0 + 10_000, lon: -179.9995 }]);
    expect(num(await s.query(`SELECT count(*) AS n FROM shore_env`))).toEqual([{ n: 1 }]);
    await s.close();

    const source = await driver.source(location);
    const objects = [];
    for await (const o of source.objects()) objects.push(o);
    expect(objects.map((o) => [o.lat, o.lon, o.depthM, o.positionQuality, o.capturedAt])).toEqual([[25.5, 179.9995, 12.5, 'interpolated', T0 + 5000]]);
    // 5 m bins in the hour of T0: 10-15 m holds 0.25 + 0.5 + 0.25; unknown depth 0.125; the next hour 1.
    const bins = (await source.volumeBins(3_600_000, 5, 0, Number.MAX_SAFE_INTEGER)).map((b) => [b.windowStart - T0, b.bin, b.volumeM3]);
    bins.sort((a, b) => Number(a[0]) - Number(b[0]) || Number(a[1] ?? -1) - Number(b[1] ?? -1));
    expect(bins).toEqual([[0, null, 0.125], [0, 2, 1], [3_600_000, 2, 1]]);
    await source.close();
  });
});
