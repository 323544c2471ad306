// Serving one shard, for ShardOwnership: on start, the connections the previous owner left are
// loaded from their snapshots and the shard's inbox is read (its own loop, its own health);
// entries are acknowledged through the shard's lease, so a member that lost it acknowledges
// nothing. On stop, local delivery to the shard ends first (stanzas for its connections go
// through the inbox, to whoever serves it next), then the read loop ends once the batches in
// flight are done (planned) or at once (lease lost), and the connections leave memory: they
// are the next owner's now. No connection is closed by a handover.
import { LoopHealth } from "../../shared/async/loop-health.js";
import type { Bus } from "../../shared/bus/bus.js";
import type { ShardEntry } from "../../shared/bus/packets.js";
import { FencedError } from "../../shared/leases/fenced-error.js";
import type { FencedWrites } from "../../shared/leases/fenced-writes.js";
import type { Lease } from "../../shared/leases/shard-leases.js";
import type { Logger } from "../../shared/log.js";
import type { SnapshotStore } from "../../shared/stores/snapshot/snapshot-store.js";
import type { ConnState } from "../core/connection.js";
import type { ShardHost } from "../ownership/shard-ownership.js";
import type { ConnectionTable } from "./connection-table.js";
import type { LocalDelivery } from "./local-delivery.js";
import type { PacketProcessor } from "./packet-processor.js";
import type { SnapshotSink } from "./snapshot-writer.js";

export interface ShardHostDeps {
  bus: Bus;
  snapshots: SnapshotStore;
  fenced: FencedWrites;
  table: ConnectionTable;
  processor: PacketProcessor;
  /** Which shards' connections get local delivery (LiveContext); told of every change here. */
  local: LocalDelivery;
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

interface Running {
  controller: AbortController;
  health: LoopHealth;
  reading: Promise<void>;
}

export class SessionShardHost implements ShardHost {
  private readonly running = new Map<number, Running>();

  constructor(private readonly deps: ShardHostDeps) {}

  async start(shard: number, lease: Lease): Promise<void> {
    const { bus, snapshots, table, log } = this.deps;
    const restored = await snapshots.loadShard(shard);
    for (const [, snapshot] of restored) table.set(JSON.parse(snapshot) as ConnState);
    if (restored.size > 0)
      log.info({ shard, connections: restored.size }, "continuing the shard's connections");
    // The inbox ends of every shard served, read now that the lease is ours: what the previous
    // owner routed anywhere is at or below them.
    const served = [...this.deps.local.servedShards(), shard];
    const ends = await Promise.all(served.map((s) => bus.shardInboxEnd(s)));
    this.deps.local.started(shard, new Map(served.map((s, i) => [s, ends[i]])));
    const running: Running = {
      controller: new AbortController(),
      health: new LoopHealth(),
      reading: Promise.resolve(),
    };
    const { controller, health } = running;
    this.running.set(shard, running);
    running.reading = bus
      .consumeShards(
        [shard],
        this.deps.consumerName,
        (batch, ack) => this.handle(shard, batch, ack),
        controller.signal,
        {
          health,
          acknowledge: (s, ids) => this.acknowledge(s, ids),
          readableForMs: () => (this.deps.leaseOf(shard)?.expiresAtMs ?? 0) - Date.now(),
          onHandled: (s, lastId) => {
            if (this.running.get(shard) === running) this.deps.local.handled(s, lastId);
          },
        },
      )
      .catch((err: unknown) => {
        // The loop retries what it can; ending means it cannot go on: give the shard up.
        log.error({ err, shard, token: lease.token }, "shard read loop stopped; stepping down");
        this.deps.stepDown(shard);
      });
  }

  async stop(shard: number, planned: boolean): Promise<void> {
    this.deps.local.stopped(shard);
    const running = this.running.get(shard);
    if (running) {
      running.controller.abort();
      await running.reading;
      this.running.delete(shard);
    }
    let moved = 0;
    for (const conn of this.deps.table.all()) {
      if (conn.shard !== shard) continue;
      this.deps.table.forget(conn.connId);
      moved++;
    }
    this.deps.inboxLags.delete(shard);
    this.deps.log.info({ shard, planned, connections: moved }, "stopped serving the shard");
  }

  /** Whether every shard read loop progresses (for /readyz); true with no shards. */
  isHealthy(staleMs: number): boolean {
    for (const { health } of this.running.values()) if (!health.isHealthy(staleMs)) return false;
    return true;
  }

  /**
   * A batch is applied only while the lease surely lasts: a member that was paused (SIGSTOP, a
   * long GC) past its lease may wake up holding entries its read got just before; the new owner
   * has claimed and handled them, so applying them here would deliver them twice.
   */
  private async handle(
    shard: number,
    batch: ShardEntry[],
    ack: (entries: readonly ShardEntry[]) => void,
  ): Promise<void> {
    if (!this.deps.leaseOf(shard)) {
      this.deps.refused(shard);
      throw FencedError.notHeld(shard);
    }
    return this.deps.processor.handleBatch(batch, ack);
  }

  private async acknowledge(shard: number, ids: readonly string[]): Promise<void> {
    const lease = this.deps.leaseOf(shard);
    try {
      if (!lease) throw FencedError.notHeld(shard);
      await this.deps.fenced.ack(lease, ids);
    } catch (err) {
      if (!(err instanceof FencedError)) throw err; // retried by the read loop
      this.deps.refused(shard);
    }
  }
}

/** Snapshot writes through each shard's lease; a refused one makes the member step down. */
export function fencedSnapshotSink(
  fenced: FencedWrites,
  leaseOf: (shard: number) => Lease | undefined,
  refused: (shard: number) => void,
): SnapshotSink {
  return async (shard, save, remove) => {
    const lease = leaseOf(shard);
    try {
      if (!lease) throw FencedError.notHeld(shard);
      await fenced.writeSnapshots(lease, save, remove);
    } catch (err) {
      if (err instanceof FencedError) refused(shard);
      throw err;
    }
  };
}
