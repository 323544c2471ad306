// Prometheus metrics of one session process. Gauges of current state are read from their
// owners at scrape time; counters and histograms are fed where the event happens.
import type { Bus } from "../shared/bus/bus.js";
import { delay } from "../shared/async/delay.js";
import type { ShardPacketKind } from "../shared/bus/packets.js";
import type { Logger } from "../shared/log.js";
import {
  BATCH_BUCKETS_ENTRIES,
  DELAY_BUCKETS_SECONDS,
  DURATION_BUCKETS_SECONDS,
  MetricsRegistry,
  registerBuildInfo,
  type Counter,
  type Gauge,
  type Histogram,
} from "../shared/metrics.js";
import { RedisCommandTimer } from "../shared/redis/command-timer.js";
import { MEGAPHONE_VERSION } from "../shared/version.js";
import type { CoreObserver, LoginResult, StanzaKind } from "./core/observer.js";

/** Bounds of a user's offline queue length (offlineMaxMessages is 500 by default). */
const OFFLINE_QUEUE_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

export interface SessionMetrics {
  registry: MetricsRegistry;
  entries: Counter<"kind">;
  batches: Counter;
  /** Connections this process ended, by stream error condition ("none" for a clean close). */
  closes: Counter<"condition">;
  /** Stream errors sent to clients, by condition. */
  streamErrors: Counter<"condition">;
  inboxLag: Gauge<"shard">;
  inboxPending: Gauge<"shard">;
  /** Shard leases taken, handed over and lost by this member. */
  leaseChanges: Counter<"change">;
  /** Writes and batches refused because this member no longer held the shard's lease. */
  fencedRefusals: Counter;
  /**
   * Two-hop delivery, stanzas offered to another member's connection whose binding allowed a
   * direct write, by path: edge (written there), route (the check sent it through the shard
   * inbox), undelivered (the edge was gone), held (not tried: a plain route to that shard in
   * flight, or a takeover's marks being read).
   */
  directDeliveries: Counter<"path">;
  /**
   * Stanzas from one connection's unit for an XEP-0198 session of this member, by path: held
   * (its turn taken and its state saved by the sender's unit) or inbox (through its shard
   * inbox, to be applied in its own turn).
   */
  smLocalDeliveries: Counter<"path">;
  /** Time to apply one shard entry, by packet kind. */
  handlerDuration: Histogram<"kind">;
  batchEntries: Histogram;
  /** Age of a shard entry when applied (entry-age.ts). */
  entryDelay: Histogram;
  /** What the protocol core reports (logins, stanzas, offline storage). */
  observer: CoreObserver;
}

export interface SessionMetricSources {
  connections(): number;
  servedShards(): number;
  /** XEP-0198 sessions detached from their socket, waiting to be resumed. */
  hibernatedSessions(): number;
}

/** SASL mechanisms counted by name; anything else a client names is counted as "other". */
const KNOWN_MECHANISMS = new Set([
  "PLAIN",
  "SCRAM-SHA-1",
  "SCRAM-SHA-256",
  "SCRAM-SHA-512",
  // RFC 5802 §6 channel binding, offered on the TLS connections the edge terminates.
  "SCRAM-SHA-1-PLUS",
  "SCRAM-SHA-256-PLUS",
  // XEP-0484 FAST token logins (SASL2).
  "HT-SHA-256-NONE",
]);

export function createSessionMetrics(
  sources: Partial<SessionMetricSources> = {},
  /** The backend's Redis timings (absent: the metric is served with no samples). */
  redisCommands?: RedisCommandTimer,
): SessionMetrics {
  const registry = new MetricsRegistry();
  const prefix = "megaphone_session_";
  registerBuildInfo(registry, MEGAPHONE_VERSION);
  registry.register((redisCommands ?? new RedisCommandTimer()).histogram);
  registry.gauge(`${prefix}connections`, "Connections served by this process.", [], (g) =>
    g.set(sources.connections?.() ?? 0),
  );
  registry.gauge(
    `${prefix}shards_served`,
    "Shards this member serves now (holds their leases).",
    [],
    (g) => g.set(sources.servedShards?.() ?? 0),
  );
  registry.gauge(
    `${prefix}hibernated_sessions`,
    "XEP-0198 sessions whose socket is gone, kept for resumption (resumptionTimeoutMs).",
    [],
    (g) => g.set(sources.hibernatedSessions?.() ?? 0),
  );
  const logins = registry.counter(
    `${prefix}logins_total`,
    "SASL exchanges ended, by mechanism and result (success, or the RFC 6120 failure condition sent).",
    ["mechanism", "result"],
  );
  const stanzas = registry.counter(
    `${prefix}stanzas_total`,
    "Stanzas received from bound clients, by kind (message, presence, iq).",
    ["kind"],
  );
  const resumptions = registry.counter(
    `${prefix}resumptions_total`,
    "XEP-0198 resumption requests answered: resumed, or failed (<failed/> sent).",
    ["result"],
  );
  const offlineStored = registry.counter(
    `${prefix}offline_stored_total`,
    "Messages stored offline for a user (XEP-0160).",
  );
  const offlineQueue = registry.histogram(
    `${prefix}offline_queue_messages`,
    "Length of the user's offline queue, observed after each message stored there.",
    OFFLINE_QUEUE_BUCKETS,
  );
  return {
    registry,
    fencedRefusals: registry.counter(
      `${prefix}fenced_refusals_total`,
      "Shard writes and batches refused because this member no longer held the shard's lease.",
    ),
    directDeliveries: registry.counter(
      `${prefix}direct_deliveries_total`,
      "Stanzas for other members' connections offered to their edges directly, by path (edge, route, undelivered, held).",
      ["path"],
    ),
    smLocalDeliveries: registry.counter(
      `${prefix}sm_local_deliveries_total`,
      "Stanzas from one connection's unit for an XEP-0198 session of this member, by path (held, inbox).",
      ["path"],
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
    streamErrors: registry.counter(
      `${prefix}stream_errors_total`,
      "Stream errors sent to clients, by RFC 6120 condition (each ends its connection).",
      ["condition"],
    ),
    inboxLag: registry.gauge(
      `${prefix}inbox_lag_entries`,
      "Entries in a served shard's inbox not yet read by the session group (overload signal), as last sampled.",
      ["shard"],
    ),
    inboxPending: registry.gauge(
      `${prefix}inbox_pending_entries`,
      "Entries of a served shard's inbox read and not yet acknowledged (being applied), as last sampled.",
      ["shard"],
    ),
    handlerDuration: registry.histogram(
      `${prefix}handler_duration_seconds`,
      "Time to apply one shard inbox entry (its handlers, not the storing of its effects), by packet kind.",
      DURATION_BUCKETS_SECONDS,
      ["kind"],
    ),
    batchEntries: registry.histogram(
      `${prefix}batch_entries`,
      "Entries per shard inbox batch handed to the session.",
      BATCH_BUCKETS_ENTRIES,
    ),
    entryDelay: registry.histogram(
      `${prefix}entry_delay_seconds`,
      "Age of a shard inbox entry when applied: now minus the entry id's milliseconds (Redis's clock against the session's).",
      DELAY_BUCKETS_SECONDS,
    ),
    observer: {
      login: (mechanism: string, result: LoginResult) =>
        logins.inc({ mechanism: KNOWN_MECHANISMS.has(mechanism) ? mechanism : "other", result }),
      stanza: (kind: StanzaKind) => stanzas.inc({ kind }),
      resumption: (result: "resumed" | "failed") => resumptions.inc({ result }),
      offlineStored: (queueLength: number | undefined) => {
        offlineStored.inc();
        if (queueLength !== undefined) offlineQueue.observe(queueLength);
      },
    },
  };
}

export function countEntry(metrics: SessionMetrics, kind: ShardPacketKind): void {
  metrics.entries.inc({ kind });
}

/** The last sampled inbox lag of each owned shard (entries not yet read by the group). */
export type InboxLags = Map<number, number>;

/**
 * Samples each served shard's inbox lag and pending entries every `intervalMs` (pipelined
 * XINFO and XLEN per shard); a shard no longer served leaves the gauges.
 */
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
      const sampled = await Promise.all(shards.map((shard) => bus.shardBacklog(shard)));
      metrics.inboxLag.reset();
      metrics.inboxPending.reset();
      shards.forEach((shard, i) => {
        lags.set(shard, sampled[i].lag);
        metrics.inboxLag.set({ shard: String(shard) }, sampled[i].lag);
        metrics.inboxPending.set({ shard: String(shard) }, sampled[i].pending);
      });
    } catch (err) {
      log.warn({ err }, "sampling inbox lag failed");
    }
    await delay(intervalMs, signal);
  }
}
