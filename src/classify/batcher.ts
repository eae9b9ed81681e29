// Micro-batching: items wait until maxBatch of them are pending or the oldest has waited
// maxWaitMs, and a runner has room; then up to maxBatch of them go out as one batch. Items of one
// batch share a key (the ensemble generation), computed when the batch is formed.

export interface BatcherOptions<T> {
  maxBatch: number;
  maxWaitMs: number;
  /**
   * Whether a batch can be handed out now (a runner has room). runBatch must take that room
   * synchronously, before its first await, or pump() would hand out more than there is room for.
   */
  canDispatch: () => boolean;
  /** The group an item belongs to, decided at dispatch time; throwing rejects the item. */
  key: (item: T) => number;
}

interface Pending<T, R> {
  item: T;
  enqueuedAt: number;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

export type RunBatch<T, R> = (items: T[], key: number) => Promise<R[]>;

export class Batcher<T, R> {
  private readonly opts: BatcherOptions<T>;
  private readonly runBatch: RunBatch<T, R>;
  private readonly queue: Pending<T, R>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private draining = false;
  private inFlight = 0;

  constructor(opts: BatcherOptions<T>, runBatch: RunBatch<T, R>) {
    this.opts = opts;
    this.runBatch = runBatch;
  }

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, enqueuedAt: performance.now(), resolve, reject });
      this.pump();
    });
  }

  /** Items waiting for a batch. */
  pending(): number {
    return this.queue.length;
  }

  /** Items in batches handed out and not yet returned. */
  running(): number {
    return this.inFlight;
  }

  /** Hand out batches while there is room and a batch is due. */
  pump(): void {
    this.clearTimer();
    while (this.queue.length > 0 && this.opts.canDispatch() && this.due()) this.dispatchOne();
    if (this.queue.length > 0 && !this.draining) {
      const wait = this.opts.maxWaitMs - (performance.now() - this.queue[0]!.enqueuedAt);
      // When the batch is due but no runner has room, a finishing batch calls pump() again.
      if (wait > 0) this.timer = setTimeout(() => this.pump(), Math.ceil(wait));
    }
  }

  /** From now on hand out every pending item without waiting; resolves when all are done. */
  async drain(): Promise<void> {
    this.draining = true;
    this.pump();
    while (this.queue.length > 0 || this.inFlight > 0) {
      await new Promise<void>((resolve) => this.onSettled.push(resolve));
    }
  }

  private readonly onSettled: (() => void)[] = [];

  private due(): boolean {
    return (
      this.draining ||
      this.queue.length >= this.opts.maxBatch ||
      performance.now() - this.queue[0]!.enqueuedAt >= this.opts.maxWaitMs
    );
  }

  private dispatchOne(): void {
    const batch: Pending<T, R>[] = [];
    let key: number | undefined;
    while (this.queue.length > 0 && batch.length < this.opts.maxBatch) {
      const next = this.queue[0]!;
      let k: number;
      try {
        k = this.opts.key(next.item);
      } catch (err) {
        this.queue.shift();
        next.reject(err);
        continue;
      }
      if (key !== undefined && k !== key) break;
      key = k;
      batch.push(this.queue.shift()!);
    }
    if (batch.length === 0 || key === undefined) {
      this.settled();
      return;
    }
    this.inFlight += batch.length;
    const settle = (fn: () => void): void => {
      this.inFlight -= batch.length;
      fn();
      this.settled();
      this.pump();
    };
    this.runBatch(
      batch.map((p) => p.item),
      key,
    ).then(
      (results) =>
        settle(() => {
          batch.forEach((p, i) => p.resolve(results[i]!));
        }),
      (err: unknown) =>
        settle(() => {
          for (const p of batch) p.reject(err);
        }),
    );
  }

  private settled(): void {
    for (const wake of this.onSettled.splice(0)) wake();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
