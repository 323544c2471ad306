// Wires one session process: the handler chain with every feature, the connection table
// restored from snapshots, the shard inbox consumer and the client pinger.
import { LoopHealth } from "../shared/async/loop-health.js";
import type { Config } from "../shared/config.js";
import { parseShardRanges } from "../shared/config-parse.js";
import type { Logger } from "../shared/log.js";
import type { Backend } from "../shared/wiring.js";
import type { ConnState } from "./core/connection.js";
import { HandlerChain } from "./core/handler-chain.js";
import { registerDisco } from "./features/disco/disco.js";
import { registerMessage } from "./features/message/message.js";
import { registerPing } from "./features/ping/ping.js";
import { registerPresence } from "./features/presence/presence.js";
import { registerRoster } from "./features/roster/roster.js";
import { registerSessionIq } from "./features/session-iq/session-iq.js";
import { registerVersion } from "./features/version/version.js";
import { runClientPinger } from "./io/client-pinger.js";
import { runEdgeWatcher } from "./io/edge-watcher.js";
import { ConnectionTable } from "./io/connection-table.js";
import { LiveContext } from "./io/live-context.js";
import { PacketProcessor } from "./io/packet-processor.js";
import { SnapshotWriter } from "./io/snapshot-writer.js";
import { createSessionMetrics, sampleInboxLag, type InboxLags } from "./session-metrics.js";
import type { MetricsRegistry } from "../shared/metrics.js";

export interface SessionHandle {
  shards: number[];
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
  consumerName: string,
  /** Called if the shard consumer stops for good; a process should exit and be restarted. */
  onFatal: (err: unknown) => void = () => undefined,
): Promise<SessionHandle> {
  const shards = parseShardRanges(config.shards, config.shardCount);
  const chain = buildHandlerChain();
  const table = new ConnectionTable();
  const metrics = createSessionMetrics(() => table.size);
  const inboxLags: InboxLags = new Map();
  const ctx: LiveContext = new LiveContext({
    config,
    log,
    bus: backend.bus,
    stores: backend,
    snapshots: backend.snapshots,
    table,
    chain,
    ownedShards: new Set(shards),
    inboxLags,
    metrics,
  });

  // Continue the connections a previous owner of these shards was serving.
  for (const shard of shards) {
    for (const [, snapshot] of await backend.snapshots.loadShard(shard)) {
      table.set(JSON.parse(snapshot) as ConnState);
    }
  }
  if (table.size > 0) log.info({ connections: table.size }, "restored connection snapshots");

  const controller = new AbortController();
  const processor = new PacketProcessor(
    ctx,
    chain,
    table,
    new SnapshotWriter(backend.snapshots),
    metrics,
    controller.signal,
  );
  let serving = true;
  const readHealth = new LoopHealth();
  const consuming = backend.bus
    .consumeShards(
      shards,
      consumerName,
      (batch, ack) => processor.handleBatch(batch, ack),
      controller.signal,
      readHealth,
    )
    .catch((err) => {
      serving = false;
      log.fatal({ err }, "shard consumer stopped");
      onFatal(err);
    });
  const pinging = runClientPinger(ctx, table, controller.signal);
  const watching = runEdgeWatcher(
    { base: ctx, table, edges: backend.edges, bus: backend.bus },
    controller.signal,
  );
  const sampling = sampleInboxLag(
    metrics,
    inboxLags,
    backend.bus,
    shards,
    config.trimIntervalMs,
    log,
    controller.signal,
  );
  log.info(
    { shards: config.shards || `0-${config.shardCount - 1}`, consumer: consumerName },
    "session serving",
  );

  return {
    shards,
    metrics: metrics.registry,
    connections: () => table.size,
    isServing: () =>
      serving && !controller.signal.aborted && readHealth.isHealthy(config.readinessStaleMs),
    async stop() {
      controller.abort();
      await Promise.all([consuming, pinging, watching, sampling]);
      await ctx.flush();
    },
  };
}
