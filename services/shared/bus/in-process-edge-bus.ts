// A bus whose writes to the edge of this very process go to that edge's inbox handler in
// process instead of through its Redis inbox: a reply then takes three stops (this process,
// Redis, this process) instead of five, which cost 30 % of the CPU per message at 2,000 msg/s
// and half the p99 (docs/capacity.md, "Fewer stops, measured"). Everything else is the inner
// bus's.
//
// Handing a frame over in process is the edge reading it at once, so nothing written for the
// same edge through Redis may be waiting unread: this bus is safe only where no other process
// writes to this edge's inbox. That holds for a session member that is the only member and
// serves every shard (the all-in-one on Redis with static membership of one, services.ts): no
// other member routes or writes directly to the edge, a restarted process's edge has a new
// address (a new inbox), and the admin commands write to shard inboxes only. Two-hop direct
// writes (Bus.direct) are not offered: they go through Redis. Several such processes on one
// Redis need the ordering rule docs/capacity.md describes ("What building it takes").
//
// The frames of one event-loop turn are handed over as one batch (one cork per socket, as a
// Redis read's batch), batches in order, each frame with an id in the form of a stream entry
// id that holds the time it was written, so that the edge's delivery delay still measures
// from the write. A write resolves once its batch is handled, as a Redis write resolves once
// stored: what the edge gave back as undelivered is stored by then.
// Once the edge stops reading (its consumeEdge signal aborted), writes go to the inner bus,
// which finds no inbox and says so.
import type { LoopHealth } from "../async/loop-health.js";
import type {
  Bus,
  EdgeBatchHandler,
  ShardBacklog,
  ShardBatchHandler,
  ShardConsumeOptions,
} from "./bus.js";
import type { EdgePacket, ShardPacket } from "./packets.js";

interface LocalEdge {
  address: string;
  handler: EdgeBatchHandler;
  signal: AbortSignal;
}

export class InProcessEdgeBus implements Bus {
  /** The one edge of this process, once it reads its inbox. */
  private local: LocalEdge | undefined;
  private queued: EdgePacket[] = [];
  /** The write time of each queued packet, as an entry id ("<ms>-0"). */
  private queuedIds: string[] = [];
  /** Settles with the batch being handed over; the next one starts after it. */
  private batches: Promise<void> = Promise.resolve();
  private queuedBatch: Promise<void> | undefined;

  constructor(private readonly inner: Bus) {}

  get direct(): undefined {
    return undefined;
  }

  toShard(shard: number, packet: ShardPacket): Promise<string> {
    return this.inner.toShard(shard, packet);
  }

  shardInboxEnd(shard: number): Promise<string> {
    return this.inner.shardInboxEnd(shard);
  }

  async toEdge(edgeId: string, packet: EdgePacket): Promise<boolean> {
    const local = this.local;
    if (!local || local.address !== edgeId || local.signal.aborted)
      return this.inner.toEdge(edgeId, packet);
    this.queued.push(packet);
    this.queuedIds.push(`${Date.now()}-0`);
    this.queuedBatch ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
      this.handOver(local),
    );
    await this.queuedBatch;
    return true;
  }

  /** Hands the queued packets to the edge, after the batch before them. */
  private handOver(local: LocalEdge): Promise<void> {
    const batch = this.queued;
    const ids = this.queuedIds;
    this.queued = [];
    this.queuedIds = [];
    this.queuedBatch = undefined;
    const handled = this.batches.then(() => local.handler(batch, ids));
    // The next batch waits for this one, whatever its outcome; its writers see the outcome.
    this.batches = handled.catch(() => undefined);
    return handled;
  }

  consumeShards(
    shards: number[],
    consumer: string,
    handler: ShardBatchHandler,
    signal: AbortSignal,
    options?: ShardConsumeOptions,
  ): Promise<void> {
    return this.inner.consumeShards(shards, consumer, handler, signal, options);
  }

  readingGroups(shards: readonly number[]): number[][] {
    return this.inner.readingGroups(shards);
  }

  consumeEdge(
    edgeId: string,
    handler: EdgeBatchHandler,
    signal: AbortSignal,
    health?: LoopHealth,
  ): Promise<void> {
    if (this.local && !this.local.signal.aborted && this.local.address !== edgeId)
      return Promise.reject(
        new Error(`in-process edge bus: edge ${this.local.address} already reads here`),
      );
    this.local = { address: edgeId, handler, signal };
    // Its Redis inbox is read on: the edge's readiness follows that loop, and nothing else
    // writes there while this process is the only member.
    return this.inner.consumeEdge(edgeId, handler, signal, health);
  }

  recoverEdgeInbox(
    address: string,
    forward: (packets: EdgePacket[]) => Promise<void>,
  ): Promise<boolean> {
    return this.inner.recoverEdgeInbox(address, forward);
  }

  shardLag(shard: number): Promise<number> {
    return this.inner.shardLag(shard);
  }

  shardBacklog(shard: number): Promise<ShardBacklog> {
    return this.inner.shardBacklog(shard);
  }

  dropEdge(edgeId: string): Promise<void> {
    return this.inner.dropEdge(edgeId);
  }

  isReady(): boolean {
    return this.inner.isReady();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
