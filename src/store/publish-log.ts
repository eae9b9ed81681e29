// What the publisher needs to survive restarts: the counts sequence number, and which closed
// windows have had their final message acknowledged (the rest are sent when the broker is back).
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './db.js';
import { groupWindows, windowStartOf, type CountRow, type WindowCounts } from './windows.js';

const SEQ_KEY = 'counts_seq';
/** A closed window older than this is not republished after an outage (it stays in the database). */
const CATCH_UP_HORIZON_MS = 24 * 3600 * 1000;

export class PublishLog {
  private readonly windowMs: number;
  private readonly stmts: {
    getSeq: Statement<[string], { value: number }>;
    setSeq: Statement<[string, number]>;
    unpublished: Statement<[number, number, number, number, number], { window_start: number }>;
    windowRows: Statement<[number, number], CountRow>;
    mark: Statement<[number, number, number]>;
  };
  private seq: number;

  constructor(db: SqliteDatabase, windowMs: number) {
    this.windowMs = windowMs;
    this.stmts = {
      getSeq: db.prepare(`SELECT value FROM meta_state WHERE key = ?`),
      setSeq: db.prepare(`INSERT INTO meta_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
      unpublished: db.prepare(
        `SELECT DISTINCT c.window_start FROM counts c
         WHERE c.window_ms = ? AND c.window_start >= ? AND c.window_start < ?
           AND NOT EXISTS (SELECT 1 FROM published_windows p WHERE p.window_ms = ? AND p.window_start = c.window_start)
         ORDER BY c.window_start LIMIT ?`,
      ),
      windowRows: db.prepare(
        `SELECT window_start, window_end, label, count FROM counts WHERE window_ms = ? AND window_start = ? ORDER BY label`,
      ),
      mark: db.prepare(
        `INSERT INTO published_windows (window_ms, window_start, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
    };
    this.seq = this.stmts.getSeq.get(SEQ_KEY)?.value ?? 0;
  }

  /** Strictly increasing across restarts: persisted before it is handed out. */
  nextSeq(): number {
    this.seq += 1;
    this.stmts.setSeq.run(SEQ_KEY, this.seq);
    return this.seq;
  }

  /** The open window (the one holding `now`). */
  current(now: number): WindowCounts {
    const start = windowStartOf(now, this.windowMs);
    return this.window(start);
  }

  /** Closed windows (before the one holding `now`) whose final message is not acknowledged, oldest first. */
  unpublished(now: number, limit: number): WindowCounts[] {
    const open = windowStartOf(now, this.windowMs);
    const starts = this.stmts.unpublished.all(this.windowMs, open - CATCH_UP_HORIZON_MS, open, this.windowMs, limit);
    return starts.map((s) => this.window(s.window_start));
  }

  /** The final message of the window starting at `windowStart` was acknowledged by the broker. */
  markPublished(windowStart: number, now: number): void {
    this.stmts.mark.run(this.windowMs, windowStart, now);
  }

  private window(start: number): WindowCounts {
    const [w] = groupWindows(this.stmts.windowRows.all(this.windowMs, start));
    return w ?? { windowStart: start, windowEnd: start + this.windowMs, total: 0, counts: {} };
  }
}
