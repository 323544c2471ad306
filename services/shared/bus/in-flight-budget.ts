// The bound on shard entries handed to handlers and not yet acknowledged (inboxEntriesInFlight),
// shared by every shard read loop of one process: a member serving many shards holds no more
// entries in memory than one serving a single shard.

export class InFlightBudget {
  private used = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Entries handed over and not yet acknowledged or given back. */
  get inFlight(): number {
    return this.used;
  }

  /** Resolves once there is room for more entries (or `signal` aborts). */
  async room(signal: AbortSignal): Promise<void> {
    while (this.used >= this.limit && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  take(entries: number): void {
    this.used += entries;
  }

  give(entries: number): void {
    this.used -= entries;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
