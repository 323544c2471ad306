// FencedWrites in process memory: the fencing check of MemoryShardLeases, then the write, with
// no await in between (the targets below are synchronous), so nothing else in the process runs
// between the check and the write.
import { FencedError } from "./fenced-error.js";
import type { FencedAck, FencedSnapshotWrite, FencedWrites } from "./fenced-writes.js";
import type { MemoryShardLeases } from "./memory-shard-leases.js";
import type { Lease } from "./shard-leases.js";
import type { UnackedStanza } from "../stores/sm/sm-queue-store.js";

/** Where the fenced writes land: the in-memory snapshot store, XEP-0198 queues and inboxes. */
export interface MemoryFencedTarget {
  saveSnapshots(shard: number, save: ReadonlyMap<string, string>, remove: readonly string[]): void;
  storeUnacked(shard: number, unacked: readonly UnackedStanza[]): void;
  /** Acknowledges entries of a shard inbox; returns how many were pending. */
  ack(shard: number, entryIds: readonly string[]): number;
}

export class MemoryFencedWrites implements FencedWrites {
  constructor(
    private readonly leases: MemoryShardLeases,
    private readonly target: MemoryFencedTarget,
  ) {}

  async writeSnapshots(
    lease: Lease,
    save: ReadonlyMap<string, string>,
    remove: readonly string[] = [],
    unacked: readonly UnackedStanza[] = [],
  ): Promise<void> {
    await this.writeSnapshotsAndAck(lease, save, remove, [], unacked);
  }

  async writeSnapshotsAndAck(
    lease: Lease,
    save: ReadonlyMap<string, string>,
    remove: readonly string[],
    entryIds: readonly string[],
    unacked: readonly UnackedStanza[] = [],
  ): Promise<number> {
    const [acked] = await this.writeTogether([{ lease, save, remove, entryIds, unacked }]);
    return acked;
  }

  readonly writesShardsTogether = true;
  /** The memory bus's edge inboxes are not among its targets. */
  readonly writesEdgeFrames = false;

  async writeTogether(items: readonly FencedSnapshotWrite[]): Promise<number[]> {
    if (items.some(({ frames }) => frames !== undefined && frames.length > 0))
      throw new Error("frames for edges are written with snapshots only on one Redis server");
    for (const { lease } of items) this.leases.fence(lease);
    return items.map(({ lease, save, remove, entryIds, unacked }) => {
      this.target.saveSnapshots(lease.shard, save, remove);
      this.target.storeUnacked(lease.shard, unacked);
      return this.target.ack(lease.shard, entryIds);
    });
  }

  async ack(lease: Lease, entryIds: readonly string[]): Promise<number> {
    this.leases.fence(lease);
    return this.target.ack(lease.shard, entryIds);
  }

  async ackMany(items: readonly FencedAck[]): Promise<(number | FencedError)[]> {
    return items.map(({ lease, entryIds }) => {
      try {
        this.leases.fence(lease);
        return this.target.ack(lease.shard, entryIds);
      } catch (err) {
        if (err instanceof FencedError) return err;
        throw err;
      }
    });
  }
}
