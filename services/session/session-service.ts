// Wires one session process: the handler chain with every feature, the connection table
// restored from snapshots, the shard inbox consumer and the client pinger.
import type { Config } from "../shared/config.js";
import { parseShardRanges } from "../shared/config-parse.js";
import { ShardOwnership } from "./ownership/shard-ownership.js";
import { SessionShardHost, fencedSnapshotSink, type OwnEdgeShards } from "./io/shard-host.js";
import { LocalDelivery } from "./io/local-delivery.js";
import { DirectDelivery } from "./io/direct-delivery.js";
import type { Logger } from "../shared/log.js";
import type { Backend } from "../shared/wiring.js";
import { HandlerChain } from "./core/handler-chain.js";
import { registerDisco } from "./features/disco/disco.js";
import { registerMessage } from "./features/message/message.js";
import { registerPing } from "./features/ping/ping.js";
import { registerPresence } from "./features/presence/presence.js";
import { registerRoster } from "./features/roster/roster.js";
import { registerSessionIq } from "./features/session-iq/session-iq.js";
import { registerVersion } from "./features/version/version.js";
import { runClientPinger } from "./io/client-pinger.js";
import { BoshTimers, runBoshTimers } from "./io/bosh/bosh-timers.js";
import { runEdgeWatcher } from "./io/edge-watcher.js";
import { ConnectionTable } from "./io/connection-table.js";
import { LiveContext } from "./io/live-context.js";
import { PacketProcessor } from "./io/packet-processor.js";
import { SnapshotWriter } from "./io/snapshot-writer.js";
import { createSessionMetrics, sampleInboxLag, type InboxLags } from "./session-metrics.js";
import type { MetricsRegistry } from "../shared/metrics.js";
import { isHibernating } from "./io/stream-management.js";

export interface SessionHandle {
  /** The shards served now (their leases held), ascending. */
  shards(): number[];
  metrics: MetricsRegistry;
  connections(): number;
  isServing(): boolean;
  stop(): Promise<void>;
}

export function buildHandlerChain(): HandlerChain {
  const chain = new HandlerChain();
  registerSessionIq(chain);
  registerRoster(chain);
  registerPresence(chain);
  registerMessage(chain);
  registerDisco(chain);
  registerPing(chain);
  registerVersion(chain);
  return chain;
}

export async function startSession(
  config: Config,
  backend: Backend,
  log: Logger,
  /** This member's id: its membership entry, lease holder name and consumer name. */
  memberId: string,
  /** Called if the session cannot go on; a process should exit and be restarted. */
  onFatal: (err: unknown) => void = () => undefined,
  /** A node's own edge, told of every shard taken and given up (InProcessEdgeBus). */
  ownEdge?: OwnEdgeShards,
): Promise<SessionHandle> {
  const chain = buildHandlerChain();
  const table = new ConnectionTable();
  const held: { ownership?: ShardOwnership } = {};
  const metrics = createSessionMetrics(
    {
      connections: () => table.size,
      servedShards: () => held.ownership?.serving().length ?? 0,
      hibernatedSessions: () => table.all().filter(isHibernating).length,
    },
    backend.redisCommands,
  );
  const inboxLags: InboxLags = new Map();
  const local = new LocalDelivery();
  const bus = backend.bus;
  const everyShard = [...Array(config.shardCount).keys()];
  const direct =
    config.twoHopDelivery && bus.direct
      ? new DirectDelivery(bus.direct, memberId, async () => {
          const ends = await Promise.all(everyShard.map((s) => bus.shardInboxEnd(s)));
          return new Map(everyShard.map((s, i) => [s, ends[i]]));
        })
      : undefined;
  // Shards come and go with their leases (ShardOwnership); until it exists nothing is held.
  const leaseOf = (shard: number) => held.ownership?.leaseOf(shard);
  const stepDown = (shard: number) => held.ownership?.stepDown(shard);
  const refused = (shard: number) => {
    metrics.fencedRefusals.inc();
    stepDown(shard);
  };
  const snapshots = new SnapshotWriter(
    fencedSnapshotSink(backend.fenced, leaseOf, refused),
    backend.fenced.writesShardsTogether,
    backend.fenced.writesEdgeFrames,
  );
  // The other writes of shard state (XEP-0198 queues, directed presence) carry the lease too.
  backend.shardFence.use((shard) => leaseOf(shard)?.token);
  const ctx: LiveContext = new LiveContext({
    config,
    log,
    bus: backend.bus,
    stores: backend,
    snapshots,
    table,
    chain,
    local,
    direct,
    ownEdge,
    inboxLags,
    metrics,
    boshTimers: new BoshTimers(config.boshInactivityMs, Date.now()),
  });

  // Stops the work that outlives the shards (pings, edge watching, lag sampling) and, last,
  // the retries of units in flight.
  const controller = new AbortController();
  // Stops taking shards; the ones held are handed over.
  const ownershipController = new AbortController();
  const processor = new PacketProcessor(
    ctx,
    chain,
    table,
    snapshots,
    metrics,
    controller.signal,
    (shard) => leaseOf(shard) !== undefined,
  );
  const host = new SessionShardHost({
    bus: backend.bus,
    snapshots: backend.snapshots,
    fenced: backend.fenced,
    table,
    processor,
    local,
    direct,
    ownEdge,
    inboxLags,
    consumerName: memberId,
    log,
    leaseOf,
    stepDown,
    refused,
  });
  const membership = await backend.membership(memberId);
  const owner = new ShardOwnership(membership, backend.leases, host, {
    memberId,
    shardCount: config.shardCount,
    fixedShards: config.shards ? parseShardRanges(config.shards, config.shardCount) : undefined,
    leaseTtlMs: config.shardLeaseTtlMs,
    log,
    onChange: (change) => metrics.leaseChanges.inc({ change }),
  });
  held.ownership = owner;
  await membership.join(memberId);
  const owning = owner.run(ownershipController.signal).catch((err: unknown) => {
    log.fatal({ err }, "shard ownership stopped");
    onFatal(err);
  });
  // Serve the free shards we want before saying we serve (a restart waits for its leases).
  await owner.firstTick();

  const pinging = runClientPinger(ctx, table, controller.signal);
  const boshTiming = runBoshTimers(ctx, table, ctx.deps.boshTimers!, controller.signal);
  const watching = runEdgeWatcher(
    { base: ctx, table, edges: backend.edges, bus: backend.bus },
    controller.signal,
  );
  const sampling = sampleInboxLag(
    metrics,
    inboxLags,
    backend.bus,
    () => local.servedShards(),
    config.trimIntervalMs,
    log,
    controller.signal,
  );
  log.info(
    {
      member: memberId,
      membership: membership.members(),
      serving: owner.serving().length,
      wanted: owner.wanted().length,
    },
    "session serving",
  );

  let stopping: Promise<void> | undefined;
  return {
    shards: () => owner.serving(),
    metrics: metrics.registry,
    connections: () => table.size,
    isServing: () => !controller.signal.aborted && host.isHealthy(config.readinessStaleMs),
    stop: () =>
      (stopping ??= (async () => {
        // Leaving first: the others want our shards at their next heartbeat, and take each one
        // as soon as we hand it over.
        await membership.leave().catch((err: unknown) => log.warn({ err }, "leaving failed"));
        ownershipController.abort();
        await owning;
        controller.abort();
        await Promise.all([pinging, boshTiming, watching, sampling]);
        await ctx.flush().catch((err: unknown) => log.warn({ err }, "final flush failed"));
        await membership.close();
      })()),
  };
}
