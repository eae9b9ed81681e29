// Count windows: fixed spans of `windowMs` aligned to the Unix epoch, so every process and every
// restart agrees on where a window starts.

/** Counts of one window, by predicted label. */
export interface WindowCounts {
  /** Inclusive start, ms since epoch. */
  windowStart: number;
  /** Exclusive end, ms since epoch. */
  windowEnd: number;
  /** Sum over labels. */
  total: number;
  /** Label to count; labels with no frames in the window are absent. */
  counts: Record<string, number>;
}

/** Start of the window that holds instant `t`. */
export function windowStartOf(t: number, windowMs: number): number {
  if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
  return Math.floor(t / windowMs) * windowMs;
}

/** Folds `(window_start, window_end, label, count)` rows, ordered by window, into WindowCounts. */
export function groupWindows(rows: readonly CountRow[]): WindowCounts[] {
  const out: WindowCounts[] = [];
  let cur: WindowCounts | undefined;
  for (const r of rows) {
    if (!cur || cur.windowStart !== r.window_start) {
      cur = { windowStart: r.window_start, windowEnd: r.window_end, total: 0, counts: {} };
      out.push(cur);
    }
    cur.counts[r.label] = (cur.counts[r.label] ?? 0) + r.count;
    cur.total += r.count;
  }
  return out;
}

/** A row of the counts table as read back. */
export interface CountRow {
  window_start: number;
  window_end: number;
  label: string;
  count: number;
}
