// Serving one shard, for ShardOwnership: on start, the connections the previous owner left are
// loaded from their snapshots and the shard's inbox is read (with the other shards' inboxes
// where the bus allows: shard-read-loops.ts); entries are acknowledged through the shard's
// lease, so a member that lost it acknowledges nothing. On stop, local delivery to the shard
// ends first (stanzas for its connections go through the inbox, to whoever serves it next),
// then reading it ends once the batches in flight are done, and the connections leave memory:
// they are the next owner's now. No connection is closed by a handover.
import type { Bus } from "../../shared/bus/bus.js";
import type { ShardEntry } from "../../shared/bus/packets.js";
import { FencedError } from "../../shared/leases/fenced-error.js";
import type { FencedAck, FencedWrites } from "../../shared/leases/fenced-writes.js";
import type { Lease } from "../../shared/leases/shard-leases.js";
import type { Logger } from "../../shared/log.js";
import type { SnapshotStore } from "../../shared/stores/snapshot/snapshot-store.js";
import type { ConnState } from "../core/connection.js";
import type { ShardHost } from "../ownership/shard-ownership.js";
import type { ConnectionTable } from "./connection-table.js";
import type { DirectDelivery } from "./direct-delivery.js";
import type { LocalDelivery } from "./local-delivery.js";
import type { PacketProcessor } from "./packet-processor.js";
import { ShardReadLoops } from "./shard-read-loops.js";
import type { SnapshotSink } from "./snapshot-writer.js";
import { continueAfterTakeover } from "./bosh/bosh-timers.js";

/**
 * The edge of this very process, when the member hands its own connections' packets to it in
 * process while others write to its inbox too (a node: InProcessEdgeBus). Told of a shard
 * once its lease is ours and before its inbox is read (it reads the edge inbox's end then),
 * and first when the shard is given up; and of a refused resume.
 */
export interface OwnEdgeShards {
  serving(shard: number): Promise<void>;
  released(shard: number): void;
  /** Another member refused the connection's resume, so it renames nothing (stream-management.ts). */
  resumeRefused(connId: string): void;
}

export interface ShardHostDeps {
  bus: Bus;
  snapshots: SnapshotStore;
  fenced: FencedWrites;
  table: ConnectionTable;
  processor: PacketProcessor;
  /** Which shards' connections get local delivery (LiveContext); told of every change here. */
  local: LocalDelivery;
  /** Two-hop delivery, told of every shard taken (absent: off). */
  direct?: DirectDelivery;
  /** A node's own edge (absent: not a node). */
  ownEdge?: OwnEdgeShards;
  /** Sampled inbox lags, per served shard. */
  inboxLags: Map<number, number>;
  consumerName: string;
  log: Logger;
  /** The lease a shard is served under, while it lasts. */
  leaseOf(shard: number): Lease | undefined;
  /** Stop serving the shard (its read loop ended). */
  stepDown(shard: number): void;
  /** A write or batch of the shard was refused by fencing: count it and step down. */
  refused(shard: number): void;
}

export class SessionShardHost implements ShardHost {
  private readonly reading: ShardReadLoops;
  private readonly turns = new Map<number, number>();

  constructor(private readonly deps: ShardHostDeps) {
    this.reading = new ShardReadLoops({
      bus: deps.bus,
      consumerName: deps.consumerName,
      handle: (batch, ack, acknowledged) => this.handle(batch, ack, acknowledged),
      acknowledge: (acks) => this.acknowledge(acks),
      leaseOf: deps.leaseOf,
      handled: (shard, lastId) => deps.local.handled(shard, lastId),
      failed: (shards, err) => {
        // The loop retries what it can; ending means it cannot go on: give the shards up.
        deps.log.error({ err, shards }, "shard read loop stopped; stepping down");
        for (const shard of shards) deps.stepDown(shard);
      },
    });
  }

  async start(shard: number, lease: Lease): Promise<void> {
    const { bus, snapshots, table, log } = this.deps;
    const turn = this.nextTurn(shard);
    const restored = await snapshots.loadShard(shard);
    // Stopped meanwhile (its lease lost while starting): none of it is ours to serve.
    if (this.turns.get(shard) !== turn) return;
    const now = Date.now();
    for (const [, snapshot] of restored) {
      const conn = JSON.parse(snapshot) as ConnState;
      continueAfterTakeover(conn, now);
      table.set(conn);
    }
    if (restored.size > 0)
      log.info(
        { shard, connections: restored.size, token: lease.token },
        "continuing the shard's connections",
      );
    // The inbox ends of every shard served, read now that the lease is ours: what the previous
    // owner routed anywhere is at or below them. Two-hop delivery reads every shard's: the
    // previous owner's stanzas for any of them must not be overtaken by a direct write either.
    const served = [...this.deps.local.servedShards(), shard];
    const [ends] = await Promise.all([
      Promise.all(served.map((s) => bus.shardInboxEnd(s))),
      this.deps.direct?.takeOver(),
      this.deps.ownEdge?.serving(shard),
    ]);
    // Stopped meanwhile: stop() forgot the connections restored above; a node's edge ignores
    // the end read for a stopped shard by itself.
    if (this.turns.get(shard) !== turn) return;
    this.deps.local.started(shard, new Map(served.map((s, i) => [s, ends[i]])));
    await this.reading.add(shard);
  }

  /** Counts each shard's starts and stops, so that a start overtaken by a stop gives up. */
  private nextTurn(shard: number): number {
    const turn = (this.turns.get(shard) ?? 0) + 1;
    this.turns.set(shard, turn);
    return turn;
  }

  async stop(shard: number, planned: boolean): Promise<void> {
    this.nextTurn(shard);
    this.deps.local.stopped(shard);
    this.deps.ownEdge?.released(shard);
    await this.reading.remove(shard);
    if (planned) await this.saveUnsaved(shard);
    let moved = 0;
    for (const conn of this.deps.table.all()) {
      if (conn.shard !== shard) continue;
      this.deps.table.forget(conn.connId);
      moved++;
    }
    this.deps.inboxLags.delete(shard);
    this.deps.log.info({ shard, planned, connections: moved }, "stopped serving the shard");
  }

  /**
   * The connections of `shard` kept in memory only (logins of this process's own sockets not
   * bound yet, packet-processor.ts), saved for the next owner: their sockets stay here. The
   * shard's reading has ended; each is saved in its turn (a pinger's close may be under way),
   * through the lease, which a planned stop still holds. A failure leaves them to be closed by
   * the next owner (their next packet finds no connection there).
   */
  private async saveUnsaved(shard: number): Promise<void> {
    const { table, fenced, leaseOf, log } = this.deps;
    const conns = table.unsavedOf(shard);
    if (conns.length === 0) return;
    const lease = leaseOf(shard);
    if (!lease) {
      log.warn({ shard, connections: conns.length }, "logins not saved: the lease is gone");
      return;
    }
    try {
      await Promise.all(
        conns.map((conn) =>
          table.withConn(conn.connId, async () => {
            const now = table.get(conn.connId);
            if (!now || now.stage === "closed" || !table.isUnsaved(now.connId)) return;
            await fenced.writeSnapshots(lease, new Map([[now.connId, JSON.stringify(now)]]), []);
          }),
        ),
      );
    } catch (err) {
      log.warn({ err, shard, connections: conns.length }, "saving logins failed");
    }
  }

  /** Whether every shard read loop progresses (for /readyz); true with no shards. */
  isHealthy(staleMs: number): boolean {
    return this.reading.isHealthy(staleMs);
  }

  /**
   * A batch is applied only while the lease surely lasts: a member that was paused (SIGSTOP, a
   * long GC) past its lease may wake up holding entries its read got just before; the new owner
   * has claimed and handled them, so applying them here would deliver them twice.
   */
  private async handle(
    batch: ShardEntry[],
    ack: (entries: readonly ShardEntry[]) => void,
    acknowledged: (entries: readonly ShardEntry[]) => void,
  ): Promise<void> {
    const notHeld = new Set(batch.map((e) => e.shard).filter((s) => !this.deps.leaseOf(s)));
    if (notHeld.size === 0) return this.deps.processor.handleBatch(batch, ack, acknowledged);
    // A packet handed over in process is in no inbox to stay pending in: its edge must learn
    // that it was not applied (own-member-intake.ts).
    const lost = batch.find((e) => e.inProcess && notHeld.has(e.shard));
    if (lost) {
      this.deps.refused(lost.shard);
      throw FencedError.notHeld(lost.shard);
    }
    // Those entries stay pending (their acknowledgement is refused too): the new owner claims
    // them. The other shards' entries go on.
    for (const shard of notHeld) this.deps.refused(shard);
    const held = batch.filter((e) => !notHeld.has(e.shard));
    if (held.length > 0) await this.deps.processor.handleBatch(held, ack, acknowledged);
  }

  /**
   * A turn's acknowledgements, all shards in one fenced write (FencedWrites.ackMany). A shard
   * whose lease is gone or fenced is refused (the member steps down from it) and its entries
   * stay pending for the next owner; any other failure is retried by the read loop.
   */
  private async acknowledge(acks: ReadonlyMap<number, readonly string[]>): Promise<void> {
    const items: FencedAck[] = [];
    for (const [shard, entryIds] of acks) {
      const lease = this.deps.leaseOf(shard);
      if (lease) items.push({ lease, entryIds });
      else this.deps.refused(shard);
    }
    const results = await this.deps.fenced.ackMany(items);
    results.forEach((result, i) => {
      if (result instanceof FencedError) this.deps.refused(items[i].lease.shard);
    });
  }
}

/**
 * Snapshot writes through each shard's lease, with the acknowledgement of the entries whose
 * units they conclude in the same fenced step when there are any; several shards' parts, and
 * frames for edges, in one step (FencedWrites.writeTogether), all or nothing, where the store
 * takes them. A refused one
 * makes the member step down from the shard whose lease was not live.
 */
export function fencedSnapshotSink(
  fenced: FencedWrites,
  leaseOf: (shard: number) => Lease | undefined,
  refused: (shard: number) => void,
): SnapshotSink {
  return async (writes) => {
    try {
      const items = writes.map(({ shard, save, remove, ackIds, unacked, frames }) => {
        const lease = leaseOf(shard);
        if (!lease) throw FencedError.notHeld(shard);
        return { lease, save, remove, entryIds: ackIds, unacked, frames };
      });
      if (items.length > 1 || items[0].frames.length > 0) await fenced.writeTogether(items);
      else {
        const [{ lease, save, remove, entryIds, unacked }] = items;
        if (entryIds.length > 0)
          await fenced.writeSnapshotsAndAck(lease, save, remove, entryIds, unacked);
        else await fenced.writeSnapshots(lease, save, remove, unacked);
      }
    } catch (err) {
      if (err instanceof FencedError) refused(err.shard);
      throw err;
    }
  };
}
