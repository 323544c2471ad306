// The edge's Prometheus metrics. Gauges of current state are read from their owners at render
// time; counters are bumped where the event happens.
import { MetricsRegistry, type Counter } from "../shared/metrics.js";

export interface EdgeMetricSources {
  connections(): number;
  inflightPublishes(): number;
  heldFrames(): number;
  heldBytes(): number;
  unauthenticatedConnections(): number;
  paused(): boolean;
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
}

export function createEdgeMetrics(sources: EdgeMetricSources): EdgeMetrics {
  const registry = new MetricsRegistry();
  const prefix = "megaphone_edge_";
  registry.gauge(`${prefix}connections`, "Open client WebSockets.", [], (g) =>
    g.set(sources.connections()),
  );
  registry.gauge(`${prefix}inflight_publishes`, "Shard-inbox writes awaiting Redis.", [], (g) =>
    g.set(sources.inflightPublishes()),
  );
  registry.gauge(`${prefix}held_frames`, "Packets held back while intake is paused.", [], (g) =>
    g.set(sources.heldFrames()),
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
  return {
    registry,
    framesIn: registry.counter(`${prefix}frames_in_total`, "WebSocket messages from clients."),
    bytesIn: registry.counter(`${prefix}bytes_in_total`, "Bytes of messages from clients."),
    framesOut: registry.counter(`${prefix}frames_out_total`, "WebSocket messages to clients."),
    bytesOut: registry.counter(`${prefix}bytes_out_total`, "Bytes of messages to clients."),
    closes: registry.counter(`${prefix}closes_total`, "Sockets ended, by reason.", ["reason"]),
    upgradesRefused: registry.counter(
      `${prefix}upgrades_refused_total`,
      "WebSocket upgrades refused, by reason.",
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
  };
}
