// A small concurrency limit: at most `n` tasks run at once, the rest wait in arrival order.

/** Runs async tasks at most `n` at a time. */
export class Limiter {
  private readonly n: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(n: number) {
    this.n = Math.max(1, Math.trunc(n));
  }

  /** Runs `task` when a slot is free; resolves or rejects with it. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running += 1;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next task
      else this.running -= 1;
    }
  }
}
