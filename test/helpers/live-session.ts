// The session tier's io without its read loops: a LiveContext, its connection table and a
// PacketProcessor on a real backend, for integration tests that hand the processor exact
// batches (interleavings a running mesh produces only by chance).
import type { Config } from "../../services/shared/config.js";
import type { Lease } from "../../services/shared/leases/shard-leases.js";
import { silentLogger } from "../../services/shared/log.js";
import type { Backend } from "../../services/shared/wiring.js";
import { ConnectionTable } from "../../services/session/io/connection-table.js";
import { LiveContext } from "../../services/session/io/live-context.js";
import { LocalDelivery } from "../../services/session/io/local-delivery.js";
import { PacketProcessor } from "../../services/session/io/packet-processor.js";
import { fencedSnapshotSink } from "../../services/session/io/shard-host.js";
import { SnapshotWriter } from "../../services/session/io/snapshot-writer.js";
import { createSessionMetrics } from "../../services/session/session-metrics.js";
import { buildHandlerChain } from "../../services/session/session-service.js";

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
