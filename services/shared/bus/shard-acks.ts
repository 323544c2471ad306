// Acknowledgements of shard inbox entries, as their work finishes: one connection's entries at
// a time (the session's unit of work), written together. Acks asked for in the same turn of
// the event loop become one XACK per inbox; a failed XACK is retried with backoff, and
// flush() (on stop) tries whatever is left once more.
import { delay, retryDelayMs } from "../async/delay.js";
import type { Logger } from "../log.js";
import type { Redis } from "../redis/client.js";
import type { ShardEntry } from "./packets.js";
import { SESSION_GROUP } from "./redis-bus-parts.js";

export class ShardAcks {
  private pending = new Map<string, string[]>();
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly writer: Redis,
    private readonly keyOf: (shard: number) => string,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
    /** A group that Redis lost has nothing left to acknowledge. */
    private readonly isGroupLost: (err: unknown) => boolean,
  ) {}

  ack(entries: readonly ShardEntry[]): void {
    for (const entry of entries) {
      const key = this.keyOf(entry.shard);
      let ids = this.pending.get(key);
      if (!ids) this.pending.set(key, (ids = []));
      ids.push(entry.id);
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.writing = this.writing.then(() => this.write());
    });
  }

  /** Resolves once every ack asked for so far was written (or given up on at stop). */
  async flush(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    await this.writing;
    await this.write();
  }

  private async write(): Promise<void> {
    const batch = this.pending;
    if (batch.size === 0) return;
    this.pending = new Map();
    for (let failures = 0; failures === 0 || !this.signal.aborted;) {
      try {
        await Promise.all(
          [...batch].map(([key, ids]) => this.writer.xack(key, SESSION_GROUP, ...ids)),
        );
        return;
      } catch (err) {
        if (this.isGroupLost(err)) return;
        this.log.error({ err }, "acknowledging a shard batch failed; retrying");
        failures++;
        await delay(retryDelayMs(failures), this.signal);
      }
    }
  }
}
