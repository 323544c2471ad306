// A first-in first-out gate for costly work: at most `concurrency` tasks run at once, the rest
// wait in arrival order, and past a bound on waiters new work is refused at once rather than
// queued without limit. Used where each task occupies a scarce worker (libuv's thread pool):
// running more at once only makes every task slower, waiting in line keeps each one's latency
// close to its own cost plus its place in the queue.

export class BoundedFifo {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly concurrency: number) {
    if (!Number.isSafeInteger(concurrency) || concurrency < 1)
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `task` once a slot is free, after every task admitted before it. Returns undefined
   * (and never calls `task`) when no slot is free and `maxQueued` tasks already wait.
   */
  tryRun<T>(task: () => Promise<T>, maxQueued: number): Promise<T> | undefined {
    // While anyone waits every slot is taken, so a free slot means an empty line.
    if (this.running < this.concurrency) {
      this.running++;
      return this.holding(task);
    }
    if (this.waiting.length >= maxQueued) return undefined;
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() =>
      this.holding(task),
    );
  }

  /** Runs `task` in a slot the caller already holds, then passes the slot on. */
  private async holding<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } finally {
      // The slot goes straight to the oldest waiter, so a task arriving meanwhile cannot
      // overtake it; only with nobody waiting is it freed.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
