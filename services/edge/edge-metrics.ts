// The edge's Prometheus metrics. Gauges of current state are read from their owners at render
// time; counters are bumped where the event happens.
import type { ShardBacklog } from "../shared/bus/bus.js";
import {
  BATCH_BUCKETS_ENTRIES,
  DELAY_BUCKETS_SECONDS,
  MetricsRegistry,
  registerBuildInfo,
  type Counter,
  type Gauge,
  type Histogram,
} from "../shared/metrics.js";
import { RedisCommandTimer } from "../shared/redis/command-timer.js";
import { MEGAPHONE_VERSION } from "../shared/version.js";

/** One shard this edge assigns connections to, as last sampled (shard-lag.ts). */
export interface ShardInboxState {
  shard: number;
  /** Undefined until the first sample answered. */
  backlog: ShardBacklog | undefined;
  /** The edge holds this shard's frames (its inbox is past maxInboxLagEntries). */
  holding: boolean;
}

export interface EdgeMetricSources {
  connections(): number;
  inflightPublishes(): number;
  heldFrames(): number;
  heldBytes(): number;
  /** BOSH requests held for their session's answer (bosh/held-requests.ts). */
  boshHeldRequests(): number;
  unauthenticatedConnections(): number;
  paused(): boolean;
  /** True from the start of stop (SIGTERM) on. */
  draining(): boolean;
  shardInboxes(): ShardInboxState[];
}

export interface EdgeMetrics {
  readonly registry: MetricsRegistry;
  readonly framesIn: Counter;
  readonly bytesIn: Counter;
  readonly framesOut: Counter;
  readonly bytesOut: Counter;
  /** Every socket end, by reason name (close-reasons.ts); slow-consumer is one of them. */
  readonly closes: Counter<"reason">;
  readonly upgradesRefused: Counter<"reason">;
  readonly publishFailures: Counter;
  /** Edge-inbox packets for sockets that are already gone. */
  readonly orphanPackets: Counter;
  readonly duplicatesDropped: Counter;
  /** Sockets whose WebSocket upgrade completed, or TCP c2s sockets accepted. */
  readonly connectionsOpened: Counter;
  /** TCP c2s sockets accepted, by how their port starts streams (tcp/c2s-stream.ts). */
  readonly tcpAccepted: Counter<"mode">;
  /** Age of each edge-inbox data entry when written to its socket (entry-age.ts). */
  readonly deliveryDelay: Histogram;
  /** Entries per edge-inbox read. */
  readonly inboxBatchEntries: Histogram;
}

export function createEdgeMetrics(
  sources: EdgeMetricSources,
  /** The backend's Redis timings (absent: the metric is served with no samples). */
  redisCommands?: RedisCommandTimer,
): EdgeMetrics {
  const registry = new MetricsRegistry();
  const prefix = "megaphone_edge_";
  registerBuildInfo(registry, MEGAPHONE_VERSION);
  registry.register((redisCommands ?? new RedisCommandTimer()).histogram);
  registry.gauge(`${prefix}connections`, "Open client WebSockets.", [], (g) =>
    g.set(sources.connections()),
  );
  registry.gauge(
    `${prefix}draining`,
    "1 while the edge drains (from SIGTERM until it exits), else 0.",
    [],
    (g) => g.set(sources.draining() ? 1 : 0),
  );
  registry.gauge(`${prefix}inflight_publishes`, "Shard-inbox writes awaiting Redis.", [], (g) =>
    g.set(sources.inflightPublishes()),
  );
  registry.gauge(`${prefix}held_frames`, "Packets held back while intake is paused.", [], (g) =>
    g.set(sources.heldFrames()),
  );
  registry.gauge(
    `${prefix}bosh_held_requests`,
    "BOSH requests held open for their session's answer (bounded by maxConnections).",
    [],
    (g) => g.set(sources.boshHeldRequests()),
  );
  registry.gauge(
    `${prefix}held_bytes`,
    "Cost in bytes of the packets held back while intake is paused (bounded by edgeMaxHeldBytes).",
    [],
    (g) => g.set(sources.heldBytes()),
  );
  registry.gauge(
    `${prefix}unauthenticated_connections`,
    "Open sockets whose stream the session has not restarted after SASL (nor authTimeoutMs old).",
    [],
    (g) => g.set(sources.unauthenticatedConnections()),
  );
  registry.gauge(
    `${prefix}paused`,
    "1 while intake is paused (maxInflightPublishes reached), else 0.",
    [],
    (g) => g.set(sources.paused() ? 1 : 0),
  );
  // Every shard the edge assigns to, owned by a live session or not: a shard nobody reads shows
  // here (its lag grows), where the sessions' own lag gauge has no owner to report it.
  const perShard =
    (value: (state: ShardInboxState) => number | undefined) => (g: Gauge<"shard">) => {
      g.reset();
      for (const state of sources.shardInboxes()) {
        const v = value(state);
        if (v !== undefined) g.set({ shard: String(state.shard) }, v);
      }
    };
  registry.gauge(
    `${prefix}shard_inbox_lag`,
    "Entries of each shard inbox not yet read by any session, as last sampled (shardLagSampleIntervalMs).",
    ["shard"],
    perShard((s) => s.backlog?.lag),
  );
  registry.gauge(
    `${prefix}shard_inbox_length`,
    "Entries stored in each shard inbox (unread, and read but not yet trimmed), as last sampled.",
    ["shard"],
    perShard((s) => s.backlog?.length),
  );
  registry.gauge(
    `${prefix}shard_holding`,
    "1 while the edge holds a shard's frames because its inbox is past maxInboxLagEntries, else 0.",
    ["shard"],
    perShard((s) => (s.holding ? 1 : 0)),
  );
  return {
    registry,
    framesIn: registry.counter(`${prefix}frames_in_total`, "WebSocket messages from clients."),
    bytesIn: registry.counter(`${prefix}bytes_in_total`, "Bytes of messages from clients."),
    framesOut: registry.counter(`${prefix}frames_out_total`, "WebSocket messages to clients."),
    bytesOut: registry.counter(`${prefix}bytes_out_total`, "Bytes of messages to clients."),
    closes: registry.counter(`${prefix}closes_total`, "Sockets ended, by reason.", ["reason"]),
    upgradesRefused: registry.counter(
      `${prefix}upgrades_refused_total`,
      "WebSocket upgrades and TCP c2s connections refused, by reason.",
      ["reason"],
    ),
    publishFailures: registry.counter(
      `${prefix}publish_failures_total`,
      "Shard-inbox writes that failed (each closes its connection with internal-error).",
    ),
    orphanPackets: registry.counter(
      `${prefix}orphan_packets_total`,
      "Edge-inbox packets for sockets the edge does not hold (closed, or closing as a slow consumer), returned to their session as undelivered.",
    ),
    connectionsOpened: registry.counter(
      `${prefix}connections_opened_total`,
      "Client sockets accepted (WebSocket upgrade completed, or TCP c2s accepted).",
    ),
    tcpAccepted: registry.counter(
      `${prefix}tcp_accepted_total`,
      "TCP c2s sockets accepted, by port mode (starttls, direct-tls, plain).",
      ["mode"],
    ),
    deliveryDelay: registry.histogram(
      `${prefix}delivery_delay_seconds`,
      "Age of an edge-inbox data entry when written to its socket: now minus the entry id's milliseconds (Redis's clock against the edge's).",
      DELAY_BUCKETS_SECONDS,
    ),
    inboxBatchEntries: registry.histogram(
      `${prefix}inbox_batch_entries`,
      "Entries per read of the edge's inbox that returned any.",
      BATCH_BUCKETS_ENTRIES,
    ),
    duplicatesDropped: registry.counter(
      `${prefix}duplicate_frames_dropped_total`,
      "Frames not written because their origin was written to the socket before (a shard entry applied twice after a session member died).",
    ),
  };
}
