// The seam between tiers: shard inboxes (many writers, one consumer group) and edge
// inboxes (many writers, one reader). Implementations: MemoryBus (all-in-one, tests) and
// RedisBus (Redis Streams).
import type { LoopHealth } from "../async/loop-health.js";
import type { EdgePacket, ShardEntry, ShardPacket } from "./packets.js";

/**
 * Handles a batch of shard entries. `ack` acknowledges entries whose work is done (each at most
 * once, in any order) so that one slow connection holds up only its own; whatever is not
 * acknowledged when the promise resolves is acknowledged then. `acknowledged` tells the bus of
 * entries the handler has acknowledged itself, in a write of its own that is stored already (a
 * session member's unit whose fenced snapshot write carried them:
 * FencedWrites.writeSnapshotsAndAck): the bus counts them done, out of the entries in flight,
 * and writes nothing for them. An entry is passed to one of the two, at most once.
 */
export type ShardBatchHandler = (
  batch: ShardEntry[],
  ack: (entries: readonly ShardEntry[]) => void,
  acknowledged: (entries: readonly ShardEntry[]) => void,
) => Promise<void>;
/** `entryIds[i]` is the inbox entry id of `batch[i]` (its age: entry-age.ts). */
export type EdgeBatchHandler = (batch: EdgePacket[], entryIds: readonly string[]) => Promise<void>;

/**
 * Writes one packet this very process's session sends to the edge straight to its socket
 * (in-process-edge-bus.ts): true when the edge handled it, false when it must go through the
 * edge's inbox instead. False only for a connection that no socket of the edge will take a
 * frame for again (unknown, closing, renamed away) or when the edge refuses in-process writes
 * for good, so a packet sent through the inbox is never overtaken by a later one written here.
 */
export type InProcessEdgeWriter = (packet: EdgePacket) => boolean;

/** Optional parts of Bus.consumeShards. */
export interface ShardConsumeOptions {
  /** Each completed read is reported here (and each failed one). */
  health?: LoopHealth;
  /**
   * Writes the acknowledgements of one turn, entry ids by shard, in place of the bus's own (a
   * session member acknowledges through its shard leases, all in one step: FencedWrites.ackMany).
   * A rejection is retried with backoff until the signal aborts; a caller that learns it may no
   * longer acknowledge a shard (its lease is gone) resolves for it and gives the shard up instead.
   */
  acknowledge?: (acks: ReadonlyMap<number, readonly string[]>) => Promise<void>;
  /**
   * How much longer (ms) the caller may read the inboxes (its lease's remaining time). No
   * read or claim is sent, and none left blocking, past that: a member paused beyond its lease
   * must not take entries that now belong to the next owner. Default: forever.
   */
  readableForMs?: () => number;
  /**
   * Called with `lastId` each time every entry this loop read up to that id (in stream order)
   * has been handled: stanzas written at or below it can no longer be overtaken by one that
   * skips the inbox (local delivery).
   */
  onHandled?: (shard: number, lastId: string) => void;
}

/** How far behind one shard inbox is (Bus.shardBacklog). */
export interface ShardBacklog {
  /** Entries not yet delivered to any consumer. */
  lag: number;
  /** Entries stored in the inbox. */
  length: number;
  /** Entries delivered to a consumer and not yet acknowledged (read, still being applied). */
  pending: number;
}

/** A stanza a sender's session may write to its recipient's edge itself (Bus.direct). */
export interface DirectWrite {
  /** The recipient's binding, as the sender read it: user, resource, connection, edge address. */
  bareJid: string;
  resource: string;
  connId: string;
  edge: string;
  /**
   * The session member writing: the bus remembers, per member and shard, where its direct
   * writes fell back to the inbox, and checks that too (DirectWriter.write).
   */
  member: string;
  /** The last entry the member knows it put in the connection's shard inbox; "" for none. */
  mark: string;
  stanza: string;
  /** The origin (origin.ts), kept by either path so that the edge drops a repeat. */
  origin?: string;
}

/**
 * Where a DirectWrite went: to the edge; or into the connection's shard inbox (`inboxId`), as
 * a `route` packet (not safe to write directly) or as `undelivered` (the edge is gone).
 */
export type DirectOutcome = { path: "edge" } | { path: "route" | "undelivered"; inboxId: string };

/** Two-hop delivery (docs/capacity.md): the check and the write are one step. */
export interface DirectWriter {
  /**
   * Writes the stanza to the edge inbox while the binding still names the connection and the
   * edge, and once the shard's group has handled everything up to the mark and up to the last
   * entry an earlier write of the same member fell back to; otherwise as a `route` packet into
   * the shard inbox, in the same step, remembered as that member's fallback, so that no later
   * write of the member can overtake it, even one issued before this one's answer. Ordered
   * with the caller's other writes.
   */
  write(direct: DirectWrite): Promise<DirectOutcome>;
}

export interface Bus {
  /**
   * Two-hop delivery, where the bus can check and write across keys in one step (one Redis
   * server); undefined otherwise (the memory bus delivers in process; Redis Cluster keeps
   * the binding and the two inboxes in different slots).
   */
  readonly direct?: DirectWriter;

  /**
   * Appends a packet to shard `shard`'s inbox. Resolves once the entry is stored, with its
   * entry id. Packets written by one caller to one shard are read in the order they were
   * written.
   */
  toShard(shard: number, packet: ShardPacket): Promise<string>;

  /**
   * The id of the last entry ever written to a shard inbox ("0-0" for none): everything at or
   * below it was written before the call.
   */
  shardInboxEnd(shard: number): Promise<string>;

  /**
   * Appends a packet to an edge's inbox; same ordering rule as toShard. Resolves false, and
   * stores nothing, when the edge has no inbox (it stopped or died): only an edge creates it.
   */
  toEdge(edgeId: string, packet: EdgePacket): Promise<boolean>;

  /**
   * Whether toEdge(edgeId, …) appends to the edge's inbox, rather than handing the packet over
   * in process (a node's or an all-in-one's own edge, in-process-edge-bus.ts). Only such a
   * frame may be written by another step into the inbox instead (FencedWrites frames): a
   * handed-over one must keep its place among the process's own.
   */
  writesEdgeInbox(edgeId: string): boolean;

  /**
   * Reads the inboxes of `shards` as `consumer` of the `session` group, in batches, and calls
   * `handler` with each batch (entries of one shard in stream order); the next batches may be
   * handed over before earlier ones are done (the Redis bus bounds the entries in flight).
   * Entries are acknowledged only when `handler` acknowledges them or resolves; if it rejects,
   * the rest stay pending and are delivered again
   * (at-least-once: handlers must be idempotent by entry id). Entries this consumer left
   * pending before (a restart) are delivered first. If the backing store lost the inboxes or
   * the group (Redis restarted empty, FLUSHALL), they are created again and reading goes on.
   * Entries other consumers left pending are claimed before the first read: the caller owns
   * these shards exclusively (it holds their leases). Returns when `signal` aborts, after the
   * batches in progress are handled and their acknowledgements written. Several calls may run
   * at once (one per reading group of a member's shards); they share the bound on entries in flight.
   */
  consumeShards(
    shards: number[],
    consumer: string,
    handler: ShardBatchHandler,
    signal: AbortSignal,
    options?: ShardConsumeOptions,
  ): Promise<void>;

  /**
   * `shards` in groups whose inboxes one consumeShards call reads together, with one read for
   * all of them. In a Redis Cluster each inbox has a slot of its own and one command reaches
   * one slot: a group per shard there.
   */
  readingGroups(shards: readonly number[]): number[][];

  /**
   * Reads an edge's inbox from the moment of the call, in batches, in order. The edge is the
   * only reader; what it has read is trimmed, and the position of the last batch `handler`
   * finished is recorded for recoverEdgeInbox. Reads are reported to `health`. Returns when
   * `signal` aborts.
   */
  consumeEdge(
    edgeId: string,
    handler: EdgeBatchHandler,
    signal: AbortSignal,
    health?: LoopHealth,
    /**
     * The edge's in-process writer, for a bus that hands this process's own writes to the edge
     * without its inbox (InProcessEdgeBus); other buses ignore it.
     */
    inProcess?: InProcessEdgeWriter,
  ): Promise<void>;

  /**
   * Recovers the inbox of a dead edge: hands every packet its edge never delivered (written
   * after the last position the edge reported) to `forward`, in order and in batches, then
   * deletes the inbox so later writes find none. Only one process recovers an inbox at a time:
   * resolves false (doing nothing) while another holds it.
   */
  recoverEdgeInbox(
    address: string,
    forward: (packets: EdgePacket[]) => Promise<void>,
  ): Promise<boolean>;

  /** Entries written to a shard inbox and not yet delivered to any consumer (the lag signal). */
  shardLag(shard: number): Promise<number>;

  /**
   * A shard inbox's lag (as shardLag) and length (entries stored: the lag, plus entries
   * delivered but not yet acknowledged and trimmed). An inbox no consumer ever read (no group)
   * has all its entries as lag. Calls for many shards at once share round trips.
   */
  shardBacklog(shard: number): Promise<ShardBacklog>;

  /** Removes an edge's inbox when the edge stops for good. */
  dropEdge(edgeId: string): Promise<void>;

  /** Whether the bus can currently reach its backing store (for /readyz). */
  isReady(): boolean;

  close(): Promise<void>;
}
