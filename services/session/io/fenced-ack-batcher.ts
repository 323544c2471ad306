// Acknowledgements of shard inbox entries, through their shards' leases, written together:
// those asked for in the same turn of the event loop (ShardAcks asks for one per shard of a
// turn at once) become one FencedWrites.ackMany, so one script call acknowledges every shard of
// the turn instead of one call per shard. Each request still settles on its own shard's
// outcome: a fenced shard rejects with its FencedError, the others resolve.
import type { FencedError } from "../../shared/leases/fenced-error.js";
import type { FencedAck, FencedWrites } from "../../shared/leases/fenced-writes.js";
import type { Lease } from "../../shared/leases/shard-leases.js";

interface Waiting extends FencedAck {
  resolve(acked: number): void;
  reject(err: unknown): void;
}

export class FencedAckBatcher {
  private waiting: Waiting[] = [];

  constructor(private readonly fenced: FencedWrites) {}

  /** As FencedWrites.ack: how many were acknowledged, or rejects with FencedError. */
  ack(lease: Lease, entryIds: readonly string[]): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.waiting.length === 0) queueMicrotask(() => this.write());
      this.waiting.push({ lease, entryIds, resolve, reject });
    });
  }

  private write(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.fenced.ackMany(batch).then(
      (results) =>
        results.forEach((result, i) =>
          typeof result === "number"
            ? batch[i].resolve(result)
            : batch[i].reject(result as FencedError),
        ),
      (err: unknown) => batch.forEach((w) => w.reject(err)),
    );
  }
}
