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
// A node (an edge and a session member in one process, among other nodes: services.ts runNode)
// breaks that premise: other members write to its edge's inbox, for connections of shards they
// serve, and a shard can move here with its previous owner's frames unread. There the bus is
// given an order (own-edge-order.ts): a packet goes over in process only when nothing for its
// connection can be waiting unread in the inbox, and the ids of the member's own inbox writes
// and the edge's reading are tracked for it (EdgeInboxEntries).
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
import type { OwnEdgeOrder } from "./own-edge-order.js";
import { OwnMemberIntake, type IntakePath } from "./own-member-intake.js";
import type { EdgePacket, ShardPacket } from "./packets.js";

/** What a node's bus needs of its Redis bus beyond Bus: the edge inbox's entry ids. */
export interface EdgeInboxEntries {
  /** As Bus.toEdge, resolving with the entry id, or null when the edge has no inbox. */
  toEdgeEntry(edgeId: string, packet: EdgePacket): Promise<string | null>;
  /** The id of the last entry ever written to the edge's inbox ("0-0" for none). */
  edgeInboxEnd(edgeId: string): Promise<string>;
}

/** Other writers share the edge's inbox (a node): in-process writes follow `order`. */
export interface SharedEdgeInbox {
  entries: EdgeInboxEntries;
  order: OwnEdgeOrder;
  /** Told of each packet for the local edge: handed over in process, or through its inbox. */
  counted?: (path: "in-process" | "inbox") => void;
}

/** The edge's packets to this process's member in process (own-member-intake.ts). */
export interface OwnMemberIntakeOptions {
  /**
   * Told of each socket packet of the edge: handed over in process, or through the inbox; and
   * of each one handed over that the member could not apply (written to the inbox then).
   */
  counted?: (path: IntakePath) => void;
}

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
  /** Counts each shard's serving() and released() calls, so a late end read is ignored. */
  private readonly turns = new Map<number, number>();

  constructor(
    private readonly inner: Bus,
    /** Absent: this process's session is the only writer to its edge (see above). */
    private readonly shared?: SharedEdgeInbox,
    /**
     * The other direction: what the edge writes through edgeSide() for shards the member reads
     * goes to it in process (own-member-intake.ts). Absent: through the shard inboxes.
     */
    intake?: OwnMemberIntakeOptions,
  ) {
    this.intake =
      intake &&
      new OwnMemberIntake((shard, packet) => inner.toShard(shard, packet), intake.counted);
  }

  private readonly intake: OwnMemberIntake | undefined;

  /**
   * The bus as this process's edge is to use it: its writes to shard inboxes are its sockets'
   * (and its returns of undelivered stanzas, and BOSH requests), which go to the member in
   * process where they may; everything else is this bus's.
   */
  edgeSide(): Bus {
    return new EdgeSideBus(this, (shard, packet) => this.fromEdge(shard, packet));
  }

  /**
   * The session member serves `shard` from now on (its lease is ours): its connections' packets
   * go over in process once the edge has read past its inbox's end as it is now (a node).
   */
  async serving(shard: number): Promise<void> {
    if (!this.shared) return;
    const turn = this.bumpTurn(shard);
    const local = this.local;
    // With no edge reading yet, its inbox (made when it starts) holds nothing from before.
    const end =
      local && !local.signal.aborted
        ? await this.shared.entries.edgeInboxEnd(local.address)
        : "0-0";
    // Given up while the end was read: the shard is not served.
    if (this.turns.get(shard) === turn) this.shared.order.started(shard, end);
  }

  /** Another member refused `connId`'s resume: no rename of it comes (a node). */
  resumeRefused(connId: string): void {
    this.shared?.order.resumeRefused(connId);
  }

  /** The member no longer serves `shard`. */
  released(shard: number): void {
    this.intake?.stopped(shard);
    if (!this.shared) return;
    this.bumpTurn(shard);
    this.shared.order.stopped(shard);
  }

  private bumpTurn(shard: number): number {
    const turn = (this.turns.get(shard) ?? 0) + 1;
    this.turns.set(shard, turn);
    return turn;
  }

  get direct(): undefined {
    return undefined;
  }

  toShard(shard: number, packet: ShardPacket): Promise<string> {
    this.noteForOrder(packet);
    return this.inner.toShard(shard, packet);
  }

  /**
   * A write of the edge (edgeSide): a socket's own packet goes to the member in process where
   * it may; the edge's `undelivered` returns and BOSH requests (applied by their entry ids)
   * keep the inbox, and hold its later packets there until they are handled.
   */
  private fromEdge(shard: number, packet: ShardPacket): Promise<string> {
    this.noteForOrder(packet);
    const intake = this.intake;
    if (!intake) return this.inner.toShard(shard, packet);
    if (packet.k === "open" || packet.k === "data" || packet.k === "close")
      return intake.write(shard, packet);
    return intake.toInbox(shard, packet);
  }

  /**
   * A node: the session's resume request means another member may rename the connection
   * through the inbox; the edge's report of a closed socket ends what the order keeps.
   */
  private noteForOrder(packet: ShardPacket): void {
    const order = this.shared?.order;
    if (!order || !("e" in packet) || packet.e !== this.local?.address) return;
    if (packet.k === "resume") order.resuming(packet.c);
    else if (packet.k === "close") order.forget(packet.c);
  }

  shardInboxEnd(shard: number): Promise<string> {
    return this.inner.shardInboxEnd(shard);
  }

  writesEdgeInbox(edgeId: string): boolean {
    return this.local?.address !== edgeId && this.inner.writesEdgeInbox(edgeId);
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
        written =
          !local.signal.aborted &&
          (this.shared === undefined || this.shared.order.allows(packet.c)) &&
          local.write(packet);
      } catch (err) {
        reject(err);
        continue;
      }
      this.shared?.counted?.(written ? "in-process" : "inbox");
      if (written) resolve(true);
      else this.throughInbox(local.address, packet).then(resolve, reject);
    }
  }

  /** A packet for the local edge through its inbox; a node's order tracks it until read. */
  private async throughInbox(address: string, packet: EdgePacket): Promise<boolean> {
    const shared = this.shared;
    if (!shared) return this.inner.toEdge(address, packet);
    // A rename holds back the frames for the connection's new id too, which follow it.
    const connIds = packet.k === "rename" ? [packet.c, packet.d] : [packet.c];
    const id = await shared.order.viaInbox(connIds, () =>
      shared.entries.toEdgeEntry(address, packet),
    );
    return id !== null;
  }

  async consumeShards(
    shards: number[],
    consumer: string,
    handler: ShardBatchHandler,
    signal: AbortSignal,
    options?: ShardConsumeOptions,
  ): Promise<void> {
    const intake = this.intake;
    if (!intake) return this.inner.consumeShards(shards, consumer, handler, signal, options);
    const served = intake.serve(shards, { handler, readableForMs: options?.readableForMs });
    const stop = () => served.stop();
    signal.addEventListener("abort", stop, { once: true });
    try {
      await this.inner.consumeShards(shards, consumer, handler, signal, {
        ...options,
        onHandled: (shard, lastId) => {
          served.handled(shard, lastId);
          options?.onHandled?.(shard, lastId);
        },
      });
    } finally {
      stop();
      signal.removeEventListener("abort", stop);
      // The next reader of these inboxes applies what was written there after these.
      await served.settled();
    }
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
    const order = this.shared?.order;
    if (!inProcess || !order) return this.inner.consumeEdge(edgeId, handler, signal, health);
    // The edge's progress, for the order: entries are handled once the handler is done.
    const tracked: EdgeBatchHandler = async (batch, entryIds) => {
      await handler(batch, entryIds);
      for (const packet of batch) if (packet.k === "rename") order.forget(packet.c);
      if (entryIds.length > 0) order.read(entryIds[entryIds.length - 1]);
    };
    return this.inner.consumeEdge(edgeId, tracked, signal, health);
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

/** InProcessEdgeBus as its edge uses it (edgeSide): its own shard writes, the rest shared. */
class EdgeSideBus implements Bus {
  constructor(
    private readonly bus: InProcessEdgeBus,
    readonly toShard: (shard: number, packet: ShardPacket) => Promise<string>,
  ) {}

  get direct(): undefined {
    return undefined;
  }

  shardInboxEnd(shard: number): Promise<string> {
    return this.bus.shardInboxEnd(shard);
  }

  toEdge(edgeId: string, packet: EdgePacket): Promise<boolean> {
    return this.bus.toEdge(edgeId, packet);
  }

  writesEdgeInbox(edgeId: string): boolean {
    return this.bus.writesEdgeInbox(edgeId);
  }

  consumeShards(...args: Parameters<Bus["consumeShards"]>): Promise<void> {
    return this.bus.consumeShards(...args);
  }

  readingGroups(shards: readonly number[]): number[][] {
    return this.bus.readingGroups(shards);
  }

  consumeEdge(...args: Parameters<Bus["consumeEdge"]>): Promise<void> {
    return this.bus.consumeEdge(...args);
  }

  recoverEdgeInbox(...args: Parameters<Bus["recoverEdgeInbox"]>): Promise<boolean> {
    return this.bus.recoverEdgeInbox(...args);
  }

  shardLag(shard: number): Promise<number> {
    return this.bus.shardLag(shard);
  }

  shardBacklog(shard: number): Promise<ShardBacklog> {
    return this.bus.shardBacklog(shard);
  }

  dropEdge(edgeId: string): Promise<void> {
    return this.bus.dropEdge(edgeId);
  }

  isReady(): boolean {
    return this.bus.isReady();
  }

  close(): Promise<void> {
    return this.bus.close();
  }
}
