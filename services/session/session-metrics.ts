// Prometheus metrics of one session process.
import type { Bus } from "../shared/bus/bus.js";
import { delay } from "../shared/async/delay.js";
import type { ShardPacketKind } from "../shared/bus/packets.js";
import type { Logger } from "../shared/log.js";
import { MetricsRegistry, type Counter, type Gauge } from "../shared/metrics.js";

export interface SessionMetrics {
  registry: MetricsRegistry;
  entries: Counter<"kind">;
  batches: Counter;
  /** Connections this process ended, by stream error condition ("none" for a clean close). */
  closes: Counter<"condition">;
  inboxLag: Gauge<"shard">;
  /** Shard leases taken, handed over and lost by this member. */
  leaseChanges: Counter<"change">;
  /** Writes and batches refused because this member no longer held the shard's lease. */
  fencedRefusals: Counter;
}

export function createSessionMetrics(
  connections: () => number,
  servedShards: () => number = () => 0,
): SessionMetrics {
  const registry = new MetricsRegistry();
  const prefix = "megaphone_session_";
  registry.gauge(`${prefix}connections`, "Connections served by this process.", [], (g) =>
    g.set(connections()),
  );
  registry.gauge(
    `${prefix}shards_served`,
    "Shards this member serves now (holds their leases).",
    [],
    (g) => g.set(servedShards()),
  );
  return {
    registry,
    fencedRefusals: registry.counter(
      `${prefix}fenced_refusals_total`,
      "Shard writes and batches refused because this member no longer held the shard's lease.",
    ),
    leaseChanges: registry.counter(
      `${prefix}shard_lease_changes_total`,
      "Shard leases this member took (taken), handed over (released) or lost (lost).",
      ["change"],
    ),
    entries: registry.counter(`${prefix}entries_total`, "Shard inbox entries applied, by kind.", [
      "kind",
    ]),
    batches: registry.counter(`${prefix}batches_total`, "Shard inbox batches applied."),
    closes: registry.counter(`${prefix}closes_total`, "Connections ended by the session.", [
      "condition",
    ]),
    inboxLag: registry.gauge(
      `${prefix}inbox_lag_entries`,
      "Entries in a shard inbox not yet read by the session group (overload signal).",
      ["shard"],
    ),
  };
}

export function countEntry(metrics: SessionMetrics, kind: ShardPacketKind): void {
  metrics.entries.inc({ kind });
}

/** Samples each owned shard's inbox lag every `intervalMs` (one pipelined XINFO per shard). */
/** The last sampled inbox lag of each owned shard (entries not yet read by the group). */
export type InboxLags = Map<number, number>;

export async function sampleInboxLag(
  metrics: SessionMetrics,
  lags: InboxLags,
  bus: Bus,
  /** The shards served at the moment (they change with their leases). */
  servedShards: () => number[],
  intervalMs: number,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const shards = servedShards();
      const sampled = await Promise.all(shards.map((shard) => bus.shardLag(shard)));
      shards.forEach((shard, i) => {
        lags.set(shard, sampled[i]);
        metrics.inboxLag.set(sampled[i], { shard: String(shard) });
      });
    } catch (err) {
      log.warn({ err }, "sampling inbox lag failed");
    }
    await delay(intervalMs, signal);
  }
}
