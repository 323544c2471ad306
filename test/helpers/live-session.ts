// The session tier's io without its read loops: a LiveContext, its connection table and a
// PacketProcessor on a real backend, for integration tests that hand the processor exact
// batches (interleavings a running mesh produces only by chance).
import type { Bus } from "../../services/shared/bus/bus.js";
import type { EdgePacket, ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import type { FencedWrites } from "../../services/shared/leases/fenced-writes.js";
import type { Lease } from "../../services/shared/leases/shard-leases.js";
import { silentLogger } from "../../services/shared/log.js";
import type { UnackedStanza } from "../../services/shared/stores/sm/sm-queue-store.js";
import { createBackend, type Backend } from "../../services/shared/wiring.js";
import { ConnectionTable } from "../../services/session/io/connection-table.js";
import { LiveContext } from "../../services/session/io/live-context.js";
import { LocalDelivery } from "../../services/session/io/local-delivery.js";
import { PacketProcessor } from "../../services/session/io/packet-processor.js";
import { fencedSnapshotSink } from "../../services/session/io/shard-host.js";
import { SnapshotWriter } from "../../services/session/io/snapshot-writer.js";
import { createSessionMetrics } from "../../services/session/session-metrics.js";
import { buildHandlerChain } from "../../services/session/session-service.js";

/** " queued=<seq>,…" for the XEP-0198 stanzas a snapshot write stores, if any. */
const queued = (unacked: readonly UnackedStanza[]) =>
  unacked.length === 0 ? "" : ` queued=${unacked.map((u) => u.seq).join()}`;

/** Records every fenced write (and what the bus is told) in the order it happens. */
export function recordedFencedWrites(fenced: FencedWrites, log: string[]): FencedWrites {
  return {
    async writeSnapshots(lease, save, remove = [], unacked = []) {
      await fenced.writeSnapshots(lease, save, remove, unacked);
      log.push(
        `snapshots save=${[...save.keys()].join()} remove=${remove.join()}${queued(unacked)}`,
      );
    },
    async writeSnapshotsAndAck(lease, save, remove, entryIds, unacked = []) {
      const acked = await fenced.writeSnapshotsAndAck(lease, save, remove, entryIds, unacked);
      log.push(
        `snapshots+ack save=${[...save.keys()].join()} ack=${entryIds.join()}${queued(unacked)}`,
      );
      return acked;
    },
    writesShardsTogether: fenced.writesShardsTogether,
    writesEdgeFrames: fenced.writesEdgeFrames,
    async writeTogether(items) {
      const acked = await fenced.writeTogether(items);
      const parts = items.map(
        ({ save, entryIds, unacked, frames = [] }) =>
          `save=${[...save.keys()].join()}${entryIds.length > 0 ? ` ack=${entryIds.join()}` : ""}${queued(unacked)}${frames.length > 0 ? ` frames=${frames.length}` : ""}`,
      );
      log.push(`together ${parts.join(" + ")}`);
      return acked;
    },
    ack: (lease, entryIds) => fenced.ack(lease, entryIds),
    ackMany: (items) => fenced.ackMany(items),
  };
}

/** The bus callbacks of handleBatch, each call logged as "ack <ids>" / "acknowledged <ids>". */
export function loggedBusCallbacks(log: () => string[]) {
  const ids = (entries: readonly ShardEntry[]) => entries.map((e) => e.id).join();
  return {
    ack: (entries: readonly ShardEntry[]) => void log().push(`ack ${ids(entries)}`),
    acknowledged: (entries: readonly ShardEntry[]) =>
      void log().push(`acknowledged ${ids(entries)}`),
  };
}

/** `bus` with the packets written to shard inboxes and to edges also handed to the callbacks. */
export function recordingBus(
  bus: Bus,
  seen: { toShard?: (packet: ShardPacket) => void; toEdge?: (packet: EdgePacket) => void },
): Bus {
  return new Proxy(bus, {
    get(target, name) {
      if (name === "toShard" && seen.toShard)
        return (shard: number, packet: ShardPacket) => {
          seen.toShard?.(packet);
          return target.toShard(shard, packet);
        };
      if (name === "toEdge" && seen.toEdge)
        return (edgeId: string, packet: EdgePacket) => {
          seen.toEdge?.(packet);
          return target.toEdge(edgeId, packet);
        };
      const value: unknown = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export interface LiveSession {
  table: ConnectionTable;
  ctx: LiveContext;
  processor: PacketProcessor;
}

/** Snapshot writes are fenced by `leaseOf` (the leases this member holds). */
export function liveSession(
  backend: Backend,
  config: Config,
  leaseOf: (shard: number) => Lease | undefined,
  signal: AbortSignal,
): LiveSession {
  const table = new ConnectionTable();
  const chain = buildHandlerChain();
  const metrics = createSessionMetrics({ connections: () => table.size });
  const snapshots = new SnapshotWriter(
    fencedSnapshotSink(backend.fenced, leaseOf, () => undefined),
    backend.fenced.writesShardsTogether,
    backend.fenced.writesEdgeFrames,
  );
  const ctx = new LiveContext({
    config,
    log: silentLogger,
    bus: backend.bus,
    stores: backend,
    snapshots,
    table,
    chain,
    local: new LocalDelivery(),
    inboxLags: new Map(),
    metrics,
  });
  const processor = new PacketProcessor(ctx, chain, table, snapshots, metrics, signal);
  return { table, ctx, processor };
}

/**
 * A live session serving shard 0 of a fresh backend on `redisUrl` (a database of its own, 4
 * shards), shard 0's lease held by member "s1". The caller closes the backend.
 */
export async function liveSessionOnShard0(
  redisUrl: string,
  signal: AbortSignal,
): Promise<LiveSession & { backend: Backend; config: Config }> {
  const config: Config = { ...DEFAULTS, redis: redisUrl, shardCount: 4 };
  const backend = createBackend(config, silentLogger);
  const lease = (await backend.leases.acquire(0, "s1")) as Lease;
  return { ...liveSession(backend, config, () => lease, signal), backend, config };
}

/** A shard-0 entry with the given id (ids decide what was applied, not arrival). */
export function shard0Entry(id: string, packet: ShardPacket): ShardEntry {
  return { id, shard: 0, packet };
}

/** A chat message from bob/pc to `to`, with id and body numbered `n` ("m<n>", "<n>"). */
export function messageFromBob(to: string, n: number): string {
  return `<message xmlns="jabber:client" to="${to}" from="bob@localhost/pc" type="chat" id="m${n}"><body>${n}</body></message>`;
}
