// The time line of one input. GGA gives only the time of day: its date comes from the RMC or ZDA of
// the same input, else from the computer's clock. Sentences without a time (VTG, VHW, CTD lines)
// take the time of the latest timed sentence of their input, plus the time since it came, when it
// came within a few seconds.

const DAY = 86_400_000;
/** A timeless sentence takes the latest time seen on its input if that came within this long. */
const EPOCH_MS = 5_000;

export interface ClockJump {
  from: number;
  to: number;
}

export class StreamClock {
  /** The latest dated instant and when it was received. */
  private dated: { t: number; at: number } | undefined;
  /** The latest timed instant (any sentence) and when it was received. */
  private latest: { t: number; at: number } | undefined;

  /** The instant of a time of day, on the day that puts it nearest to where this input's time is now. */
  resolve(todMs: number, dateMs: number | null, receivedAt: number): number {
    if (dateMs !== null) return dateMs + todMs;
    const reference = this.dated ? this.dated.t + (receivedAt - this.dated.at) : receivedAt;
    const day = Math.floor(reference / DAY) * DAY;
    let best = day + todMs;
    for (const d of [day - DAY, day + DAY]) if (Math.abs(d + todMs - reference) < Math.abs(best - reference)) best = d + todMs;
    return best;
  }

  /**
   * Records a timed sentence; returns the jump when time went backwards by more than a second, or
   * forward by more than maxForwardMs, from the previous timed sentence.
   */
  observe(t: number, dated: boolean, receivedAt: number, maxForwardMs = DAY): ClockJump | null {
    const prev = this.latest;
    if (dated) this.dated = { t, at: receivedAt };
    this.latest = { t, at: receivedAt };
    if (!prev) return null;
    const expected = prev.t + (receivedAt - prev.at);
    if (t < prev.t - 1000 || t - expected > maxForwardMs) return { from: prev.t, to: t };
    return null;
  }

  /**
   * The time for a timeless sentence: the latest timed one's plus the time since it was received,
   * if that was recent, else the receive time.
   */
  now(receivedAt: number): number {
    if (this.latest && receivedAt - this.latest.at <= EPOCH_MS && receivedAt >= this.latest.at) return this.latest.t + (receivedAt - this.latest.at);
    return receivedAt;
  }
}
