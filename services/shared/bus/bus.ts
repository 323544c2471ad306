// The seam between tiers: shard inboxes (many writers, one consumer group) and edge
// inboxes (many writers, one reader). Implementations: MemoryBus (all-in-one, tests) and
// RedisBus (Redis Streams).
import type { EdgePacket, ShardEntry, ShardPacket } from "./packets.js";

export type ShardBatchHandler = (batch: ShardEntry[]) => Promise<void>;
export type EdgeBatchHandler = (batch: EdgePacket[]) => Promise<void>;

export interface Bus {
  /**
   * Appends a packet to shard `shard`'s inbox. Resolves once the entry is stored.
   * Packets written by one caller to one shard are read in the order they were written.
   */
  toShard(shard: number, packet: ShardPacket): Promise<void>;

  /**
   * Appends a packet to an edge's inbox; same ordering rule as toShard. Resolves false, and
   * stores nothing, when the edge has no inbox (it stopped or died): only an edge creates it.
   */
  toEdge(edgeId: string, packet: EdgePacket): Promise<boolean>;

  /**
   * Reads the inboxes of `shards` as `consumer` of the `session` group, in batches, and calls
   * `handler` with each batch (entries of one shard in stream order). Entries are acknowledged
   * only after `handler` resolves; if it rejects, they stay pending and are delivered again
   * (at-least-once: handlers must be idempotent by entry id). Entries this consumer left
   * pending before (a restart) are delivered first. Returns when `signal` aborts, after the
   * batch in progress is handled.
   */
  consumeShards(
    shards: number[],
    consumer: string,
    handler: ShardBatchHandler,
    signal: AbortSignal,
  ): Promise<void>;

  /**
   * Reads an edge's inbox from the moment of the call, in batches, in order. The edge is the
   * only reader; what it has read is trimmed. Returns when `signal` aborts.
   */
  consumeEdge(edgeId: string, handler: EdgeBatchHandler, signal: AbortSignal): Promise<void>;

  /** Entries written to a shard inbox and not yet delivered to any consumer (the lag signal). */
  shardLag(shard: number): Promise<number>;

  /** Removes an edge's inbox when the edge stops for good. */
  dropEdge(edgeId: string): Promise<void>;

  /** Whether the bus can currently reach its backing store (for /readyz). */
  isReady(): boolean;

  close(): Promise<void>;
}
