// A bus whose writes to the edge of this very process go straight to that edge's sockets
// instead of through its Redis inbox: a reply then takes three stops (this process, Redis,
// this process) instead of five (docs/capacity.md, "Fewer stops, measured"). Everything else
// is the inner bus's.
//
// Handing a frame over in process is the edge reading it at once, so nothing written for the
// same connection through Redis may be waiting unread. That holds where no other process
// writes to this edge's inbox: a session member that is the only member and serves every
// shard (the all-in-one on Redis with static membership of one, services.ts). No other member
// routes or writes directly to the edge, a restarted process's edge has a new address (a new
// inbox), and the admin commands write to shard inboxes only. Two-hop direct writes
// (Bus.direct) are not offered: they go through Redis. The edge checks the premise: a frame
// its reader finds for a connection written to here makes it refuse in-process writes.
//
// The packets of one event-loop turn are handed over together, in order, in one synchronous
// pass (InProcessEdgeWriter). The edge takes a packet only for a connection whose socket will
// have it; anything else (an unknown, closing or renamed-away connection, a frame uWS drops, an
// edge that stopped) goes through the inner bus to the edge's inbox, where the reader handles
// it as it always has (gives it back as undelivered, which may wait on a shard's gate: the
// reader waits there, never a session's write). A connection refused once is refused ever
// after, so nothing written here overtakes a packet sent through the inbox. A write resolves
// once handed over (true), or as the inner bus's write does.
import type { LoopHealth } from "../async/loop-health.js";
import type {
  Bus,
  EdgeBatchHandler,
  InProcessEdgeWriter,
  ShardBacklog,
  ShardBatchHandler,
  ShardConsumeOptions,
} from "./bus.js";
import type { EdgePacket, ShardPacket } from "./packets.js";

interface LocalEdge {
  address: string;
  write: InProcessEdgeWriter;
  signal: AbortSignal;
}

interface QueuedWrite {
  /** The edge it was written for: the one reading at the time. */
  local: LocalEdge;
  packet: EdgePacket;
  resolve(stored: boolean): void;
  reject(err: unknown): void;
}

export class InProcessEdgeBus implements Bus {
  /** The edge of this process, once it reads its inbox with an in-process writer. */
  private local: LocalEdge | undefined;
  private queued: QueuedWrite[] = [];
  private handOverScheduled = false;

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

  toEdge(edgeId: string, packet: EdgePacket): Promise<boolean> {
    const local = this.local;
    if (local?.address !== edgeId) return this.inner.toEdge(edgeId, packet);
    return new Promise<boolean>((resolve, reject) => {
      this.queued.push({ local, packet, resolve, reject });
      if (this.handOverScheduled) return;
      this.handOverScheduled = true;
      setImmediate(() => this.handOver());
    });
  }

  /**
   * Hands the turn's packets to the edge, in order; the refused ones go through its inbox. A
   * writer that throws fails that write only (its unit is applied again; the edge drops a
   * repeated frame by its origin).
   */
  private handOver(): void {
    const queued = this.queued;
    this.queued = [];
    this.handOverScheduled = false;
    for (const { local, packet, resolve, reject } of queued) {
      let written: boolean;
      try {
        written = !local.signal.aborted && local.write(packet);
      } catch (err) {
        reject(err);
        continue;
      }
      if (written) resolve(true);
      else this.inner.toEdge(local.address, packet).then(resolve, reject);
    }
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
    inProcess?: InProcessEdgeWriter,
  ): Promise<void> {
    if (this.local && !this.local.signal.aborted && this.local.address !== edgeId)
      return Promise.reject(
        new Error(`in-process edge bus: edge ${this.local.address} already reads here`),
      );
    if (inProcess) this.local = { address: edgeId, write: inProcess, signal };
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
