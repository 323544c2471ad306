// The state writes of a shard that must be fenced by its lease: each checks, in the same atomic
// step as the write, that the writer's lease is still the shard's live lease (same token), and
// otherwise throws FencedError having written nothing. So a member paused (GC, SIGSTOP,
// partition) past its lease can neither overwrite the new owner's connection snapshots nor
// acknowledge shard inbox entries the new owner must handle. Implementations: MemoryFencedWrites
// and RedisFencedWrites (Lua scripts that start with the fencing check).
import type { UnackedStanza } from "../stores/sm/sm-queue-store.js";
import type { FencedError } from "./fenced-error.js";
import type { Lease } from "./shard-leases.js";

export interface FencedWrites {
  /**
   * Stores (replaces) the snapshots in `save` and deletes those of `remove` in the lease's
   * shard, the same data SnapshotStore reads (keys.snapshot(shard)), and stores `unacked` in
   * the shard's XEP-0198 queues (what SmQueueStore.push stores), all in one step: a stanza
   * counted in a saved session's state is never missing from its queue. Throws FencedError
   * (nothing written) unless `lease` is the shard's live lease.
   */
  writeSnapshots(
    lease: Lease,
    save: ReadonlyMap<string, string>,
    remove?: readonly string[],
    unacked?: readonly UnackedStanza[],
  ): Promise<void>;

  /**
   * writeSnapshots() and ack() of the lease's shard in one step: the snapshots are stored and
   * `entryIds` of its inbox acknowledged together, or (FencedError) neither is. For a unit of
   * work whose snapshot is the last thing it stores: its acknowledgement needs no write of its
   * own. Nothing here orders the two, so a caller with writes that must be stored between the
   * snapshot and the acknowledgement (XEP-0198 resumption, other connections' saves) must not
   * use it for those entries. Resolves how many of `entryIds` were pending and are
   * acknowledged now.
   */
  writeSnapshotsAndAck(
    lease: Lease,
    save: ReadonlyMap<string, string>,
    remove: readonly string[],
    entryIds: readonly string[],
    unacked?: readonly UnackedStanza[],
  ): Promise<number>;

  /**
   * Whether writeTogether() takes several shards: on one Redis server (and in memory) it does;
   * a Redis Cluster keeps each shard in a slot of its own, which no one step spans.
   */
  readonly writesShardsTogether: boolean;

  /**
   * writeSnapshotsAndAck() of several shards in one step, all or nothing: unless every item's
   * lease is live, throws the FencedError of the first that is not, having written nothing of
   * any item. For a unit that changed other sessions' states (XEP-0198 deliveries to sessions
   * whose turns it held): theirs and its own are stored together, never its own alone. Items of
   * several shards only where writesShardsTogether; one item per shard. Resolves how many of
   * each item's `entryIds` were pending and are acknowledged now.
   */
  writeTogether(items: readonly FencedSnapshotWrite[]): Promise<number[]>;

  /**
   * Whether writeTogether() items may carry `frames`: where the edges' inboxes are on the same
   * one Redis server as the shards (not a Redis Cluster, not in memory).
   */
  readonly writesEdgeFrames: boolean;

  /**
   * Acknowledges `entryIds` of the lease's shard inbox for the session group. Resolves how
   * many were pending and are acknowledged now. Throws FencedError (nothing acknowledged, the
   * entries stay pending for the next owner to claim) unless `lease` is the shard's live lease.
   */
  ack(lease: Lease, entryIds: readonly string[]): Promise<number>;

  /**
   * ack() for several shards at once, each through its own lease, in one step where the store
   * allows (one Redis server; a cluster takes one per shard). One result per item, in order:
   * how many were acknowledged, or the FencedError of an item whose lease is not live (nothing
   * of that item acknowledged; the other items are).
   */
  ackMany(items: readonly FencedAck[]): Promise<(number | FencedError)[]>;
}

/** One shard's part of writeTogether(), as writeSnapshotsAndAck() takes it. */
export interface FencedSnapshotWrite {
  lease: Lease;
  save: ReadonlyMap<string, string>;
  remove: readonly string[];
  entryIds: readonly string[];
  unacked: readonly UnackedStanza[];
  /**
   * Frames for sockets of connections of this shard, appended to their edges' inboxes in the
   * same step, in order (only where writesEdgeFrames): what the saved states count reaches the
   * clients with them, or (the edge gone) comes back to the shard's inbox as undelivered, as
   * Bus.toEdge's caller would give it back.
   */
  frames?: readonly EdgeFrame[];
}

/** A frame for a client's socket, as a `data` packet to its edge's inbox carries it. */
export interface EdgeFrame {
  edgeId: string;
  connId: string;
  frame: string;
  /** The delivery it is (bus/origin.ts), for the edge to drop a repeat. */
  origin?: string;
}

/** Entry ids of one shard inbox to acknowledge through the shard's lease. */
export interface FencedAck {
  lease: Lease;
  entryIds: readonly string[];
}
