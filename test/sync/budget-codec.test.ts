// The token bucket, the UTC day boundary, and the batch encoding.
import { describe, expect, it } from 'vitest';
import { msToUtcMidnight, TokenBucket } from '../../src/sync/budget.js';
import { decodeBatch, encodeBatch, publishWireBytes } from '../../src/sync/codec.js';

describe('token bucket', () => {
  it('lets a burst through, then paces to the rate; a message above the burst goes once the bucket is full', () => {
    let t = 0;
    const b = new TokenBucket({ bytesPerSecond: 1000, burstBytes: 2000, now: () => t });
    expect(b.delayFor(1500)).toBe(0);
    b.take(1500);
    expect(b.delayFor(1000)).toBe(500);
    t += 500;
    expect(b.delayFor(1000)).toBe(0);
    b.take(1000);
    // 5000 bytes > burst: wait until full (2 s), then go into debt.
    expect(b.delayFor(5000)).toBe(2000);
    t += 2000;
    b.take(5000);
    expect(b.delayFor(100)).toBe(3100);
  });

  it('is a no-op without a rate', () => {
    const b = new TokenBucket({ bytesPerSecond: 0 });
    b.take(1e9);
    expect(b.delayFor(1e9)).toBe(0);
  });

  it('counts down to midnight UTC', () => {
    expect(msToUtcMidnight(Date.UTC(2026, 10, 28, 23, 59, 0))).toBe(60_000);
  });
});

describe('batch encoding', () => {
  const json = JSON.stringify({ v: 1, instrument: 'cam', sentAt: 1, records: [{ seq: 1, kind: 'counts', key: 'k', at: 1, data: { total: 0 } }] });
  it.each(['brotli', 'gzip', 'none'] as const)('%s round-trips', (c) => {
    expect(decodeBatch(encodeBatch(json, c))).toEqual(JSON.parse(json));
  });
  it('refuses what is not a batch', () => {
    expect(() => decodeBatch(Buffer.from('hello'))).toThrow(/encoding/);
    expect(() => decodeBatch(Buffer.from('{"v":2}'))).toThrow(/v1/);
    expect(() => decodeBatch(Buffer.from('{"v":1,"instrument":"a","records":[{"seq":0}]}'))).toThrow(/malformed/);
    expect(() => decodeBatch(Buffer.from([1, 2, 3]))).toThrow();
  });
  it('counts MQTT PUBLISH bytes', () => {
    expect(publishWireBytes('a/b', 100)).toBe(1 + 1 + 2 + 3 + 2 + 1 + 100);
    expect(publishWireBytes('a/b', 1000)).toBe(1 + 2 + 2 + 3 + 2 + 1 + 1000);
  });
});
