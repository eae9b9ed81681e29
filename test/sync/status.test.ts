// The shore status message on its own: the shore keeps it under the cap (cutting the missing list
// and saying so), signs it, and the ship reads back exactly what was signed.
import { describe, expect, it } from 'vitest';
import type { ShoreStatus } from '../../src/sync/records.js';
import { parseShoreStatus, SHORE_STATUS_MAX_BYTES, SHORE_STATUS_MAX_RANGES, shoreStatusPayload, verifyShoreStatus } from '../../src/sync/status.js';

const KEY = 'k'.repeat(64);

function report(ranges: number, instrument = 'cam-a'): ShoreStatus {
  const missing: [number, number][] = Array.from({ length: ranges }, (_, i) => [1_000_000_000 + 3 * i, 1_000_000_001 + 3 * i]);
  return { v: 1, instrument, contiguousThrough: 999_999_999, maxSeq: 1_000_000_000 + 3 * ranges, records: 5, missing, truncated: false, generatedAt: 1_800_000_000_000 };
}

describe('shore status payload', () => {
  it('a small report goes out whole, signed, and reads back as sent', () => {
    const text = shoreStatusPayload(report(3), KEY)!;
    const parsed = parseShoreStatus(Buffer.from(text));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.status).toEqual(report(3));
    expect(verifyShoreStatus(parsed.status, parsed.sig!, KEY)).toBe(true);
    expect(verifyShoreStatus(parsed.status, parsed.sig!, 'another key entirely, 32 chars or more')).toBe(false);
    expect(verifyShoreStatus({ ...parsed.status, contiguousThrough: parsed.status.contiguousThrough + 1 }, parsed.sig!, KEY)).toBe(false);
  });

  it('a report with too many ranges is cut to the range cap, marked truncated, and still verifies', () => {
    const text = shoreStatusPayload(report(5000), KEY)!;
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(SHORE_STATUS_MAX_BYTES);
    const parsed = parseShoreStatus(Buffer.from(text));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.status.truncated).toBe(true);
    expect(parsed.status.missing).toEqual(report(5000).missing.slice(0, SHORE_STATUS_MAX_RANGES));
    expect(verifyShoreStatus(parsed.status, parsed.sig!, KEY)).toBe(true);
  });

  it('a report over the byte cap is cut further; one that cannot fit is not made at all', () => {
    const text = shoreStatusPayload(report(900, 'x'.repeat(50_000)), KEY)!;
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(SHORE_STATUS_MAX_BYTES);
    const sent = JSON.parse(text) as ShoreStatus;
    expect(sent.truncated).toBe(true);
    expect(sent.missing.length).toBeGreaterThan(0);
    expect(sent.missing.length).toBeLessThan(900);
    expect(shoreStatusPayload(report(1, 'x'.repeat(70_000)), KEY)).toBe(null);
  });

  it('without a key the report carries no signature', () => {
    const parsed = parseShoreStatus(Buffer.from(shoreStatusPayload(report(1), null)!));
    expect(parsed.ok && parsed.sig).toBe(null);
  });

  it('refuses ranges out of order, overlapping, or outside contiguousThrough..maxSeq', () => {
    const base = report(0);
    for (const missing of [[[5, 6]], [[1_000_000_005, 1_000_000_006], [1_000_000_001, 1_000_000_002]], [[1_000_000_001, 1_000_000_003], [1_000_000_003, 1_000_000_004]], [[1_000_000_001, 2_000_000_000]], [[1_000_000_002, 1_000_000_001]]]) {
      const parsed = parseShoreStatus(Buffer.from(JSON.stringify({ ...base, maxSeq: 1_000_000_010, missing })));
      expect(parsed.ok, JSON.stringify(missing)).toBe(false);
    }
  });
});
