// What the publisher keeps across restarts: the counts sequence and the closed windows still to send.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { PublishLog } from '../../src/store/publish-log.js';
import { Store } from '../../src/store/store.js';
import { tempDir } from './helpers.js';

const WINDOW = 60_000;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function open(path: string): Store {
  const store = new Store({ path, countsWindowMs: WINDOW, logger: silentLogger() });
  store.open();
  return store;
}

function count(store: Store, windowStart: number, label: string, n: number): void {
  store.database
    .prepare('INSERT INTO counts (window_ms, window_start, window_end, label, count) VALUES (?, ?, ?, ?, ?)')
    .run(WINDOW, windowStart, windowStart + WINDOW, label, n);
}

describe('PublishLog', () => {
  it('hands out sequence numbers that keep increasing across a reopen', () => {
    const { dir, cleanup } = tempDir('pw-publog-');
    cleanups.push(cleanup);
    const file = join(dir, 'p.db');
    let store = open(file);
    let log = new PublishLog(store.database, WINDOW);
    expect([log.nextSeq(), log.nextSeq(), log.nextSeq()]).toEqual([1, 2, 3]);
    store.close();
    store = open(file);
    log = new PublishLog(store.database, WINDOW);
    expect(log.nextSeq()).toBe(4);
    store.close();
  });

  it('lists closed windows with counts until they are marked published, never the open one', () => {
    const { dir, cleanup } = tempDir('pw-publog-');
    cleanups.push(cleanup);
    const store = open(join(dir, 'p.db'));
    const now = 100 * WINDOW + 5_000;
    count(store, 97 * WINDOW, 'copepod', 3);
    count(store, 98 * WINDOW, 'copepod', 1);
    count(store, 98 * WINDOW, 'detritus', 2);
    count(store, 100 * WINDOW, 'copepod', 7); // the open window
    const log = new PublishLog(store.database, WINDOW);
    expect(log.unpublished(now, 10).map((w) => [w.windowStart / WINDOW, w.total, w.counts])).toEqual([
      [97, 3, { copepod: 3 }],
      [98, 3, { copepod: 1, detritus: 2 }],
    ]);
    expect(log.unpublished(now, 1)).toHaveLength(1);
    log.markPublished(97 * WINDOW, now);
    expect(log.unpublished(now, 10).map((w) => w.windowStart / WINDOW)).toEqual([98]);
    expect(log.current(now)).toMatchObject({ windowStart: 100 * WINDOW, total: 7, counts: { copepod: 7 } });
    store.close();
  });
});
