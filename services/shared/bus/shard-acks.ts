// Acknowledgements of shard inbox entries, as their work finishes: one connection's entries at
// a time (the session's unit of work), written together. Acks asked for in the same turn of
// the event loop become one write (the bus's: an XACK per inbox; a session member's: one fenced
// script for all its shards); a failed write is retried with backoff, and flush() (on stop)
// tries whatever is left once more.
import { delay, retryDelayMs } from "../async/delay.js";
import type { Logger } from "../log.js";
import type { ShardEntry } from "./packets.js";

/** Writes the acknowledgements of one turn: entry ids by shard inbox. */
export type AckWriter = (acks: ReadonlyMap<number, readonly string[]>) => Promise<void>;

export class ShardAcks {
  private pending = new Map<number, string[]>();
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly writeAck: AckWriter,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
    /** A group that Redis lost has nothing left to acknowledge. */
    private readonly isGroupLost: (err: unknown) => boolean,
  ) {}

  ack(entries: readonly ShardEntry[]): void {
    for (const entry of entries) {
      let ids = this.pending.get(entry.shard);
      if (!ids) this.pending.set(entry.shard, (ids = []));
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
        await this.writeAck(batch);
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
