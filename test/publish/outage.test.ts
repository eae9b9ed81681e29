import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { OutageTracker } from '../../src/publish/outage.js';

function capture(): { lines: Record<string, unknown>[]; logger: pino.Logger } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, sink) };
}

/** pino writes through a stream: let it drain before reading the lines. */
const drained = () => new Promise((resolve) => setImmediate(resolve));

describe('OutageTracker', () => {
  it('warns once per outage, with its code and the first error seen in it', async () => {
    const { lines, logger } = capture();
    const tracker = new OutageTracker({ code: 'PW_E_SYNC_LINK', url: 'mqtt://shore:1883', logger });
    tracker.error(new Error('ECONNREFUSED first'));
    tracker.down(false);
    tracker.error(new Error('ETIMEDOUT later'));
    tracker.down(false);
    tracker.down(false);
    await drained();
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ code: 'PW_E_SYNC_LINK', url: 'mqtt://shore:1883' });
    expect((warnings[0]!.err as { message: string }).message).toBe('ECONNREFUSED first');

    // The next outage is a new one, with its own first error.
    expect(tracker.up()).not.toBeNull();
    tracker.error(new Error('EHOSTUNREACH'));
    tracker.down(false);
    await drained();
    const again = lines.filter((l) => l.level === 40);
    expect(again).toHaveLength(2);
    expect((again[1]!.err as { message: string }).message).toBe('EHOSTUNREACH');
  });

  it('reports how long a reported outage lasted, and nothing after a clean connect', () => {
    vi.useFakeTimers();
    try {
      const tracker = new OutageTracker({ code: 'PW_E_MQTT', url: 'mqtt://x', logger: pino({ level: 'silent' }) });
      tracker.starting();
      expect(tracker.up()).toBeNull();
      tracker.down(false);
      vi.advanceTimersByTime(42_000);
      expect(tracker.up()).toEqual({ downS: 42 });
      // Stopping is not an outage: no warning, no duration.
      tracker.down(true);
      expect(tracker.up()).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('calls onConnectionChange on changes only, and a handler that throws is logged, not thrown', async () => {
    const { lines, logger } = capture();
    const changes: boolean[] = [];
    const tracker = new OutageTracker({
      code: 'PW_E_MQTT',
      url: 'mqtt://x',
      logger,
      onConnectionChange: (c) => {
        changes.push(c);
        if (c) throw new Error('handler bug');
      },
    });
    tracker.down(false);
    expect(() => tracker.up()).not.toThrow();
    tracker.up();
    tracker.down(false);
    tracker.down(true);
    expect(changes).toEqual([true, false]);
    expect(tracker.connected).toBe(false);
    await drained();
    expect(lines.some((l) => l.code === 'PW_E_INTERNAL' && l.level === 50)).toBe(true);
  });
});
