// The bus on Redis Streams (DESIGN.md, "Packets and streams").
// - Writes go through one auto-pipelined client: an XADD costs no round trip of its own.
// - Each read loop has its own blocking client, so no XREAD waits behind another.
// - Shard inboxes are read by the consumer group "session" and acknowledged after the handler
//   resolves; they are trimmed with MINID below the oldest entry the group still needs.
import type { Logger } from "../log.js";
import { createBlockingRedis, createRedis, type Redis } from "../redis/client.js";
import type { Keys } from "../redis/keys.js";
import type { Bus, EdgeBatchHandler, ShardBatchHandler } from "./bus.js";
import { delay, retryDelayMs } from "../async/delay.js";
import {
  edgePacketOf,
  shardPacketOf,
  type EdgePacket,
  type ShardEntry,
  type ShardPacket,
} from "./packets.js";

export const SESSION_GROUP = "session";

export interface RedisBusOptions {
  url: string;
  keys: Keys;
  log: Logger;
  /** Entries per XREAD/XREADGROUP (per stream). */
  readCount: number;
  /** How long one blocking read waits. */
  blockMs: number;
  /** How often acknowledged entries are trimmed. */
  trimIntervalMs: number;
  /** Entries another consumer left pending this long are claimed by this one (XAUTOCLAIM). */
  claimIdleMs?: number;
  /** How long an edge inbox outlives the last refresh by its edge. */
  edgeInboxTtlMs?: number;
}

export const DEFAULT_EDGE_INBOX_TTL_MS = 60000;
export const DEFAULT_CLAIM_IDLE_MS = 30000;

type StreamReply = [key: string, entries: [id: string, fields: string[] | null][]][] | null;

function fieldsOf(packet: ShardPacket | EdgePacket): string[] {
  const fields = ["k", packet.k, "c", packet.c];
  if ("e" in packet) fields.push("e", packet.e);
  if ("d" in packet) fields.push("d", packet.d);
  return fields;
}

export class RedisBus implements Bus {
  private readonly writer: Redis;
  private readonly blockingClients = new Set<Redis>();

  constructor(private readonly options: RedisBusOptions) {
    this.writer = createRedis(options.url, "megaphone-bus");
    this.writer.on("error", (err) => options.log.warn({ err }, "redis bus connection error"));
  }

  async toShard(shard: number, packet: ShardPacket): Promise<void> {
    await this.writer.xadd(this.options.keys.shardInbox(shard), "*", ...fieldsOf(packet));
  }

  async toEdge(edgeId: string, packet: EdgePacket): Promise<void> {
    // NOMKSTREAM: only the edge creates its inbox, so writes for an edge that died (or
    // stopped) never resurrect a stream nobody will read.
    await this.writer.xadd(
      this.options.keys.edgeInbox(edgeId),
      "NOMKSTREAM",
      "*",
      ...fieldsOf(packet),
    );
  }

  private blockingClient(name: string, signal: AbortSignal): Redis {
    const client = createBlockingRedis(this.options.url, name);
    client.on("error", (err) => this.options.log.warn({ err }, "redis reader connection error"));
    this.blockingClients.add(client);
    const stop = () => {
      this.blockingClients.delete(client);
      client.disconnect();
    };
    signal.addEventListener("abort", stop, { once: true });
    return client;
  }

  private async ensureGroup(key: string): Promise<void> {
    try {
      await this.writer.xgroup("CREATE", key, SESSION_GROUP, "0", "MKSTREAM");
    } catch (err) {
      if (!String(err).includes("BUSYGROUP")) throw err;
    }
  }

  async consumeShards(
    shards: number[],
    consumer: string,
    handler: ShardBatchHandler,
    signal: AbortSignal,
  ): Promise<void> {
    const { keys, log, readCount, blockMs } = this.options;
    const streamKeys = shards.map((s) => keys.shardInbox(s));
    const shardOfKey = new Map(shards.map((s) => [keys.shardInbox(s), s]));
    for (const key of streamKeys) await this.ensureGroup(key);
    const reader = this.blockingClient(`megaphone-session-${consumer}`, signal);
    // One call shape for both reads (pending and new); ioredis' overloads cannot express it.
    const xreadgroup = reader.xreadgroup.bind(reader) as unknown as (
      ...args: (string | number)[]
    ) => Promise<StreamReply>;
    // Set by maintenance when it claimed entries another consumer had left pending.
    const claims = { arrived: false };
    const maintaining = this.maintainShardsLoop(streamKeys, consumer, claims, signal);

    // First this consumer's own pending entries (left by a crash, a failed batch or claimed
    // from a dead consumer), from cursor "0" onwards; then new entries (">").
    let pendingCursors: string[] | undefined = streamKeys.map(() => "0");
    let failures = 0;
    while (!signal.aborted) {
      if (claims.arrived) {
        claims.arrived = false;
        pendingCursors = streamKeys.map(() => "0");
      }
      let reply: StreamReply;
      try {
        reply = await xreadgroup(
          "GROUP",
          SESSION_GROUP,
          consumer,
          "COUNT",
          readCount,
          ...(pendingCursors ? [] : ["BLOCK", blockMs]),
          "STREAMS",
          ...streamKeys,
          ...(pendingCursors ?? streamKeys.map(() => ">")),
        );
      } catch (err) {
        if (signal.aborted) break;
        log.error({ err }, "shard inbox read failed; retrying");
        await delay(retryDelayMs(failures++), signal);
        continue;
      }
      const batch: ShardEntry[] = [];
      const malformed: ShardEntry[] = [];
      for (const [key, entries] of reply ?? []) {
        const shard = shardOfKey.get(key) as number;
        for (const [id, fields] of entries) {
          const packet = shardPacketOf(fields);
          if (packet) batch.push({ id, shard, packet });
          else malformed.push({ id, shard, packet: { k: "kick", c: "", d: "" } });
        }
        if (pendingCursors && entries.length > 0) {
          pendingCursors[streamKeys.indexOf(key)] = entries[entries.length - 1][0];
        }
      }
      if (malformed.length > 0) {
        // Never ours to process and never going to parse: acknowledged so it cannot wedge us.
        log.error({ ids: malformed.map((e) => e.id) }, "dropping malformed shard inbox entries");
        await this.ackWithRetry(malformed, signal);
      }
      if (pendingCursors && batch.length === 0 && malformed.length === 0) {
        pendingCursors = undefined;
        continue;
      }
      if (batch.length === 0) continue;
      try {
        await handler(batch);
        failures = 0;
      } catch (err) {
        log.error({ err, entries: batch.length }, "shard batch failed; it stays pending");
        await delay(retryDelayMs(failures++), signal);
        pendingCursors = streamKeys.map(() => "0");
        continue;
      }
      await this.ackWithRetry(batch, signal);
    }
    await maintaining;
  }

  /**
   * Acknowledges handled entries, retrying until Redis takes it (or we stop: then the entries
   * stay pending and are delivered again, which entry-id idempotency absorbs).
   */
  private async ackWithRetry(batch: ShardEntry[], signal: AbortSignal): Promise<void> {
    const byKey = new Map<string, string[]>();
    for (const entry of batch) {
      const key = this.options.keys.shardInbox(entry.shard);
      let ids = byKey.get(key);
      if (!ids) byKey.set(key, (ids = []));
      ids.push(entry.id);
    }
    for (let failures = 0; !signal.aborted;) {
      try {
        await Promise.all(
          [...byKey].map(([key, ids]) => this.writer.xack(key, SESSION_GROUP, ...ids)),
        );
        return;
      } catch (err) {
        this.options.log.error({ err }, "acknowledging a shard batch failed; retrying");
        await delay(retryDelayMs(failures++), signal);
      }
    }
  }

  /**
   * Every trimIntervalMs: claims entries that another (dead) consumer left pending for
   * claimIdleMs, then trims each inbox below the oldest entry the group still needs.
   */
  private async maintainShardsLoop(
    streamKeys: string[],
    consumer: string,
    claims: { arrived: boolean },
    signal: AbortSignal,
  ): Promise<void> {
    while (!signal.aborted) {
      try {
        for (const key of streamKeys) {
          if (await this.claimIdle(key, consumer)) claims.arrived = true;
        }
        await Promise.all(streamKeys.map((key) => this.trimShard(key)));
      } catch (err) {
        this.options.log.warn({ err }, "shard inbox maintenance failed; will retry");
      }
      await delay(this.options.trimIntervalMs, signal);
    }
  }

  /** XAUTOCLAIM JUSTID: moves long-idle pending entries to us; true if any moved. */
  private async claimIdle(key: string, consumer: string): Promise<boolean> {
    const idleMs = this.options.claimIdleMs ?? DEFAULT_CLAIM_IDLE_MS;
    let cursor = "0-0";
    let claimed = 0;
    do {
      const [next, ids] = (await this.writer.xautoclaim(
        key,
        SESSION_GROUP,
        consumer,
        idleMs,
        cursor,
        "COUNT",
        this.options.readCount,
        "JUSTID",
      )) as [string, string[]];
      cursor = next;
      claimed += ids.length;
    } while (cursor !== "0-0");
    if (claimed > 0) this.options.log.warn({ key, claimed }, "claimed entries of a dead consumer");
    return claimed > 0;
  }

  private async trimShard(key: string): Promise<void> {
    const [pending, groups] = await Promise.all([
      this.writer.xpending(key, SESSION_GROUP) as Promise<[number, string | null, ...unknown[]]>,
      this.writer.xinfo("GROUPS", key) as Promise<unknown[][]>,
    ]);
    let minId: string | undefined;
    if (Number(pending[0]) > 0 && pending[1]) minId = pending[1];
    else {
      const group = groups.map(packetOfInfo).find((g) => g.name === SESSION_GROUP);
      minId = group?.["last-delivered-id"];
    }
    if (minId && minId !== "0-0") await this.writer.xtrim(key, "MINID", "~", minId);
  }

  /**
   * Creates the edge's inbox afresh and returns the id to read after. The inbox expires
   * `edgeInboxTtlMs` after its edge stops refreshing it: a dead edge leaves nothing behind.
   */
  private async createEdgeInbox(key: string): Promise<string> {
    const [, [, id]] = (await this.writer
      .multi()
      .del(key)
      .xadd(key, "*", "k", "inbox-created")
      .pexpire(key, this.options.edgeInboxTtlMs ?? DEFAULT_EDGE_INBOX_TTL_MS)
      .exec()) as [unknown, [unknown, string], unknown];
    return id;
  }

  async consumeEdge(edgeId: string, handler: EdgeBatchHandler, signal: AbortSignal): Promise<void> {
    const { keys, log, readCount, blockMs, trimIntervalMs } = this.options;
    const ttlMs = this.options.edgeInboxTtlMs ?? DEFAULT_EDGE_INBOX_TTL_MS;
    const maintenanceMs = Math.min(trimIntervalMs, ttlMs / 4);
    const key = keys.edgeInbox(edgeId);
    const reader = this.blockingClient(`megaphone-edge-${edgeId}`, signal);
    // Whatever an earlier process with this id left is for sockets that no longer exist.
    let cursor = await this.createEdgeInbox(key);
    let lastMaintenance = Date.now();
    let failures = 0;
    while (!signal.aborted) {
      let reply: StreamReply;
      try {
        reply = (await reader.xread(
          "COUNT",
          readCount,
          "BLOCK",
          blockMs,
          "STREAMS",
          key,
          cursor,
        )) as StreamReply;
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        log.error({ err }, "edge inbox read failed; retrying");
        await delay(retryDelayMs(failures++), signal);
        continue;
      }
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length > 0) {
        cursor = entries[entries.length - 1][0];
        const packets = entries.map(([, fields]) => edgePacketOf(fields));
        const valid = packets.filter((p): p is EdgePacket => p !== undefined);
        if (valid.length < packets.length) log.error("dropping malformed edge inbox entries");
        await handler(valid);
      }
      if (Date.now() - lastMaintenance >= maintenanceMs) {
        lastMaintenance = Date.now();
        try {
          // The edge is the only reader: everything up to its cursor is done with.
          const [, [, refreshed]] = (await this.writer
            .multi()
            .xtrim(key, "MINID", "~", cursor)
            .pexpire(key, ttlMs)
            .exec()) as [unknown, [unknown, number]];
          if (refreshed === 0) {
            // Stalled past the TTL: packets written meanwhile were dropped (NOMKSTREAM).
            log.error({ edgeId }, "edge inbox had expired; recreated it, packets may be lost");
            cursor = await this.createEdgeInbox(key);
          }
        } catch (err) {
          log.warn({ err }, "edge inbox maintenance failed; will retry");
        }
      }
    }
  }

  async shardLag(shard: number): Promise<number> {
    const key = this.options.keys.shardInbox(shard);
    const [groups, length] = await Promise.all([
      this.writer.xinfo("GROUPS", key).catch(() => []) as Promise<unknown[][]>,
      this.writer.xlen(key),
    ]);
    const group = groups.map(packetOfInfo).find((g) => g.name === SESSION_GROUP);
    // Without a group nobody has read anything yet: every entry is lag.
    return group ? Number(group.lag) : length;
  }

  async dropEdge(edgeId: string): Promise<void> {
    await this.writer.del(this.options.keys.edgeInbox(edgeId));
  }

  isReady(): boolean {
    return this.writer.status === "ready";
  }

  async close(): Promise<void> {
    for (const client of this.blockingClients) client.disconnect();
    this.blockingClients.clear();
    await this.writer.quit().catch(() => this.writer.disconnect());
  }
}

function packetOfInfo(info: unknown[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < info.length; i += 2) out[String(info[i])] = String(info[i + 1]);
  return out;
}
