// Connection snapshots are saved one connection at a time (each in its connection's turn,
// packet-processor.ts), but written together: saves requested in the same turn of the event
// loop (units whose effects were stored by the same Redis reply) become one HSET per shard.
// A save resolves once its snapshot is stored and rejects if that write failed.
import type { SnapshotStore } from "../../shared/stores/snapshot/snapshot-store.js";

interface ShardBatch {
  snapshots: Map<string, string>;
  waiters: { resolve(): void; reject(err: unknown): void }[];
}

export class SnapshotWriter {
  private batches = new Map<number, ShardBatch>();
  private scheduled = false;

  constructor(private readonly store: SnapshotStore) {}

  save(shard: number, connId: string, snapshot: string): Promise<void> {
    let batch = this.batches.get(shard);
    if (!batch) this.batches.set(shard, (batch = { snapshots: new Map(), waiters: [] }));
    batch.snapshots.set(connId, snapshot);
    const waiters = batch.waiters;
    const saved = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.write());
    }
    return saved;
  }

  private write(): void {
    const batches = this.batches;
    this.batches = new Map();
    this.scheduled = false;
    for (const [shard, { snapshots, waiters }] of batches) {
      this.store.saveMany(shard, snapshots).then(
        () => waiters.forEach((w) => w.resolve()),
        (err: unknown) => waiters.forEach((w) => w.reject(err)),
      );
    }
  }
}
