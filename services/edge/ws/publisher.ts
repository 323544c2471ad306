// Hands socket packets to the shard inboxes with a bound on writes in flight (DESIGN.md, "Flow
// control"). At maxInflightPublishes the edge pauses: it refuses upgrades and stops handing
// frames to the bus; it resumes once fewer than half are in flight.
//
// uWebSockets.js v20.30 has no WebSocket pause(), so a paused edge cannot stop the kernel from
// delivering frames. Frames that arrive while paused are held per connection, in order, and
// published on resume; a connection whose held frames' cost (frame-cost.ts, the same cost its
// token bucket is charged) passes inboundBurstBytes is closed with `overloaded`. Since each
// frame costs at least inboundFrameCostBytes, that bounds the number of held frames as well as
// their bytes. Over all connections, held cost is bounded by edgeMaxHeldBytes: the frame that
// would pass it ends its connection with `overloaded` too (the edge cannot refuse one frame and
// keep the stream whole), so however many sockets send while paused, the edge holds at most
// that much. Order per connection is kept: once a connection holds a packet, every later
// packet of it queues behind.
//
// The same holding applies, per shard, to a shard whose inbox is far behind (shard-lag.ts):
// while its gate is closed, its connections' packets are held under the same bounds, the other
// shards' connections go on, and the held packets are published, in order, once it opens.
import type { Bus } from "../../shared/bus/bus.js";
import type { ShardPacket } from "../../shared/bus/packets.js";
import type { Logger } from "../../shared/log.js";
import type { EdgeMetrics } from "../edge-metrics.js";
import type { ShardLagGate } from "../shard-lag.js";
import type { Connection, HeldPacket } from "./connection.js";

export interface ShardPublisherOptions {
  bus: Bus;
  maxInflight: number;
  /** Held cost per connection past which `onOverflow` is called (inboundBurstBytes). */
  maxHeldCostBytesPerConnection: number;
  /** Held cost over all connections past which `onOverflow` is called (edgeMaxHeldBytes). */
  maxHeldCostBytes: number;
  /** Which shards may be published to (their inboxes are not far behind). */
  gate: ShardLagGate;
  log: Logger;
  metrics: EdgeMetrics;
  /** A publish for `conn` failed: its stream has a hole and must end (internal-error). */
  onFailure(conn: Connection): void;
  /**
   * `conn` passed its own or the edge's held-cost bound while the edge or its shard was paused
   * (overloaded).
   */
  onOverflow(conn: Connection): void;
}

export class ShardPublisher {
  private inflightCount = 0;
  private heldCount = 0;
  private heldCostBytesTotal = 0;
  private isPaused = false;
  /** Connections holding packets, in the order they started holding. */
  private readonly waiting = new Set<Connection>();
  /** The same connections by id: a closed connection can still hold packets. */
  private readonly holdingById = new Map<string, Connection>();
  private settleWaiters: (() => void)[] = [];

  constructor(private readonly options: ShardPublisherOptions) {}

  get inflight(): number {
    return this.inflightCount;
  }

  get held(): number {
    return this.heldCount;
  }

  /** Cost of the held frames of every connection (frame-cost.ts), in bytes. */
  get heldCostBytes(): number {
    return this.heldCostBytesTotal;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /**
   * Publishes (or holds) one packet of `conn`; `costBytes` is a data packet's inbound cost
   * (frame-cost.ts). Never throws.
   */
  publish(conn: Connection, packet: ShardPacket, costBytes = 0): void {
    this.hold(conn, { packet, costBytes });
  }

  /** The connection with id `connId` if it still holds packets (it may be closed already). */
  holding(connId: string): Connection | undefined {
    return this.holdingById.get(connId);
  }

  /**
   * Publishes `packet` behind what `conn` holds (e.g. a stanza given back as undelivered must
   * not reach the session before the connection's own held frames and close); resolves once it
   * is stored, rejects if that write failed.
   */
  publishBehind(conn: Connection, packet: ShardPacket): Promise<void> {
    return new Promise((resolve, reject) =>
      this.hold(conn, {
        packet,
        costBytes: 0,
        onStored: (err) => (err === undefined ? resolve() : reject(err)),
      }),
    );
  }

  private hold(conn: Connection, held: HeldPacket): void {
    const { packet, costBytes } = held;
    if (conn.broken && packet.k === "data") return;
    if (!this.isPaused && !conn.held?.length && this.options.gate.isOpen(conn.shard))
      return this.send(conn, packet, held.onStored);
    const { maxHeldCostBytesPerConnection, maxHeldCostBytes } = this.options;
    if (
      packet.k === "data" &&
      (conn.heldCostBytes + costBytes > maxHeldCostBytesPerConnection ||
        this.heldCostBytesTotal + costBytes > maxHeldCostBytes)
    ) {
      this.options.onOverflow(conn);
      return;
    }
    (conn.held ??= []).push(held);
    conn.heldCostBytes += costBytes;
    this.heldCostBytesTotal += costBytes;
    this.heldCount++;
    this.waiting.add(conn);
    this.holdingById.set(conn.id, conn);
  }

  private stopHolding(conn: Connection): void {
    conn.held = undefined;
    this.waiting.delete(conn);
    this.holdingById.delete(conn.id);
  }

  /** Shards' gates opened (shard-lag.ts): publishes what their connections hold. */
  shardsOpened(): void {
    if (!this.isPaused) this.flushHeld();
  }

  /** Resolves once nothing is in flight or held. */
  settled(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  private idle(): boolean {
    return this.inflightCount === 0 && this.heldCount === 0;
  }

  private send(conn: Connection, packet: ShardPacket, onStored?: (err?: unknown) => void): void {
    const { bus, gate, log, maxInflight } = this.options;
    if (++this.inflightCount >= maxInflight && !this.isPaused) {
      this.isPaused = true;
      log.warn(
        { inflight: this.inflightCount },
        "edge intake paused: too many publishes in flight",
      );
    }
    if (gate.published(conn.shard))
      log.warn({ shard: conn.shard }, "shard inbox far behind: holding its frames");
    let stored: Promise<unknown>;
    try {
      stored = bus.toShard(conn.shard, packet);
    } catch (err) {
      stored = Promise.reject(err);
    }
    stored.then(
      () => {
        onStored?.();
        this.release();
      },
      (err: unknown) => {
        onStored?.(err);
        this.fail(conn, packet, err);
        this.release();
      },
    );
  }

  private fail(conn: Connection, packet: ShardPacket, err: unknown): void {
    const { log, metrics } = this.options;
    metrics.publishFailures.inc();
    log.error({ err, connId: conn.id, shard: conn.shard, kind: packet.k }, "shard publish failed");
    // Neither leaves a hole in the client's stream (an undelivered return is retried by its
    // sender).
    if (packet.k === "close" || packet.k === "undelivered") return;
    conn.broken = true;
    this.dropHeldData(conn);
    this.options.onFailure(conn);
  }

  private dropHeldData(conn: Connection): void {
    const held = conn.held ?? [];
    const kept = held.filter((h) => h.packet.k !== "data");
    this.heldCount -= held.length - kept.length;
    conn.held = kept;
    this.heldCostBytesTotal -= conn.heldCostBytes;
    conn.heldCostBytes = 0;
    if (kept.length === 0) this.stopHolding(conn);
  }

  private release(): void {
    this.inflightCount--;
    if (this.isPaused && this.inflightCount < this.options.maxInflight / 2) {
      this.isPaused = false;
      this.options.log.info({ inflight: this.inflightCount }, "edge intake resumed");
      this.flushHeld();
    }
    if (this.idle() && this.settleWaiters.length > 0) {
      const waiters = this.settleWaiters;
      this.settleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /**
   * Publishes held packets, oldest holder first, until paused again or none are left; those of
   * connections whose shard is closed stay held.
   */
  private flushHeld(): void {
    const { gate } = this.options;
    for (const conn of this.waiting) {
      while (conn.held?.length) {
        if (this.isPaused) return;
        if (!gate.isOpen(conn.shard)) break;
        const { packet, costBytes, onStored } = conn.held.shift() as HeldPacket;
        conn.heldCostBytes -= costBytes;
        this.heldCostBytesTotal -= costBytes;
        this.heldCount--;
        if (conn.broken && packet.k === "data") continue;
        this.send(conn, packet, onStored);
      }
      if (!conn.held?.length) this.stopHolding(conn);
    }
  }
}
