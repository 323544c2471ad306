// Connection snapshots are saved (and deleted) one connection at a time, each in its
// connection's turn (packet-processor.ts, live-context.ts), but written together: requests made
// in the same turn of the event loop (units whose effects were stored by the same Redis reply)
// become one write per shard. The write goes through the shard's lease (fencedSnapshotSink), so
// a member that lost the shard writes nothing. A save may carry the inbox entry ids of the unit
// it concludes: they are acknowledged in the same write (all of the turn's units' ids of that
// shard joined), so that unit needs no acknowledgement of its own. It may carry stanzas for the
// connection's XEP-0198 queue too, stored in the same write as the state that counts them, and
// frames for the connection's socket that go out in that write (where the store can). A request
// resolves once its write is stored and rejects if that write failed (then nothing of it is
// stored: neither snapshots nor acknowledgements).
import type { EdgeFrame } from "../../shared/leases/fenced-writes.js";
import type { UnackedStanza } from "../../shared/stores/sm/sm-queue-store.js";

/** One connection's snapshot to store, as SnapshotWriter.save() takes it. */
export interface SnapshotSave {
  shard: number;
  connId: string;
  snapshot: string;
  ackIds?: readonly string[];
  unacked?: readonly UnackedStanza[];
  /** Frames for the connection's socket, written to its edge by the same step (writesEdgeFrames). */
  frames?: readonly EdgeFrame[];
}

/**
 * One shard's part of a write: `save` replaces, `remove` deletes, `ackIds` of its inbox are
 * acknowledged, `unacked` stored in its XEP-0198 queues and `frames` written to edges.
 */
export interface ShardSnapshotWrite {
  shard: number;
  save: ReadonlyMap<string, string>;
  remove: readonly string[];
  ackIds: readonly string[];
  unacked: readonly UnackedStanza[];
  frames: readonly EdgeFrame[];
}

/**
 * Stores the parts of one write in one step, all or nothing: one shard's (a turn's batch), or
 * several shards' (saveTogether, only where the store can).
 */
export type SnapshotSink = (writes: readonly ShardSnapshotWrite[]) => Promise<void>;

/** A ShardSnapshotWrite being put together. */
interface ShardPart extends ShardSnapshotWrite {
  save: Map<string, string>;
  ackIds: string[];
  unacked: UnackedStanza[];
  frames: EdgeFrame[];
}

interface ShardBatch {
  /** connId → snapshot, or undefined to delete it; the last request for a connection wins. */
  changes: Map<string, string | undefined>;
  /** Inbox entry ids acknowledged with the write. */
  ackIds: string[];
  /** XEP-0198 queue stanzas stored with the write. */
  unacked: UnackedStanza[];
  /** Frames written to edges with the write. */
  frames: EdgeFrame[];
  waiters: { resolve(): void; reject(err: unknown): void }[];
}

export class SnapshotWriter {
  private batches = new Map<number, ShardBatch>();
  private scheduled = false;

  constructor(
    private readonly sink: SnapshotSink,
    /** Whether the sink takes several shards in one step (not on a Redis Cluster). */
    readonly writesTogether = false,
    /** Whether the sink takes frames for edges (FencedWrites.writesEdgeFrames). */
    readonly writesEdgeFrames = false,
  ) {}

  /**
   * Stores `saves` (connections of any shards, each once) in one step, at once: all of them or
   * (the promise rejects) none. Outside the turn's batches: a unit that stores other sessions'
   * states with its own must never have its own stored alone. Only where writesTogether.
   */
  saveTogether(saves: readonly SnapshotSave[]): Promise<void> {
    if (!this.writesTogether) throw new Error("this store writes one shard per step");
    const byShard = new Map<number, ShardPart>();
    for (const { shard, connId, snapshot, ackIds = [], unacked = [], frames = [] } of saves) {
      let write = byShard.get(shard);
      if (!write)
        byShard.set(
          shard,
          (write = { shard, save: new Map(), remove: [], ackIds: [], unacked: [], frames: [] }),
        );
      write.save.set(connId, snapshot);
      write.ackIds.push(...ackIds);
      write.unacked.push(...unacked);
      write.frames.push(...frames);
    }
    return this.sink([...byShard.values()]);
  }

  /**
   * `ackIds`: entries of `shard`'s inbox to acknowledge in the same step, for a unit whose
   * effects are all stored already and whose snapshot is the last thing it writes. `unacked`:
   * stanzas for the connection's XEP-0198 queue (of this shard) that `snapshot` counts.
   */
  save(
    shard: number,
    connId: string,
    snapshot: string,
    ackIds?: readonly string[],
    unacked?: readonly UnackedStanza[],
    frames?: readonly EdgeFrame[],
  ): Promise<void> {
    return this.request(shard, connId, snapshot, ackIds, unacked, frames);
  }

  remove(shard: number, connId: string): Promise<void> {
    return this.request(shard, connId, undefined);
  }

  private request(
    shard: number,
    connId: string,
    snapshot: string | undefined,
    ackIds?: readonly string[],
    unacked?: readonly UnackedStanza[],
    frames?: readonly EdgeFrame[],
  ): Promise<void> {
    let batch = this.batches.get(shard);
    if (!batch)
      this.batches.set(
        shard,
        (batch = { changes: new Map(), ackIds: [], unacked: [], frames: [], waiters: [] }),
      );
    batch.changes.set(connId, snapshot);
    if (ackIds) batch.ackIds.push(...ackIds);
    if (unacked) batch.unacked.push(...unacked);
    if (frames) batch.frames.push(...frames);
    const waiters = batch.waiters;
    const written = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.write());
    }
    return written;
  }

  private write(): void {
    const batches = this.batches;
    this.batches = new Map();
    this.scheduled = false;
    for (const [shard, { changes, ackIds, unacked, frames, waiters }] of batches) {
      const save = new Map<string, string>();
      const remove: string[] = [];
      for (const [connId, snapshot] of changes) {
        if (snapshot === undefined) remove.push(connId);
        else save.set(connId, snapshot);
      }
      this.sink([{ shard, save, remove, ackIds, unacked, frames }]).then(
        () => waiters.forEach((w) => w.resolve()),
        (err: unknown) => waiters.forEach((w) => w.reject(err)),
      );
    }
  }
}
