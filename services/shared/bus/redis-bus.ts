// The bus on Redis Streams (DESIGN.md, "Packets and streams").
// - Writes go through one auto-pipelined client: an XADD costs no round trip of its own.
// - Each read loop has its own blocking client, so no XREAD waits behind another.
// - Shard inboxes are read by the consumer group "session" and acknowledged after the handler
//   resolves; they are trimmed with MINID below the oldest entry the group still needs.
import type { Logger } from "../log.js";
import { createBlockingRedis, createRedis, type Redis } from "../redis/client.js";
import type { Keys } from "../redis/keys.js";
import type { Bus, EdgeBatchHandler, ShardBatchHandler } from "./bus.js";
import { delay } from "./memory-bus.js";
import type { EdgePacket, ShardEntry, ShardPacket } from "./packets.js";

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
}

type StreamReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

function fieldsOf(packet: ShardPacket | EdgePacket): string[] {
  const fields = ["k", packet.k, "c", packet.c];
  if ("e" in packet) fields.push("e", packet.e);
  if ("d" in packet) fields.push("d", packet.d);
  return fields;
}

function packetOf(fields: string[]): Record<string, string> {
  const packet: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) packet[fields[i]] = fields[i + 1];
  return packet;
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
    await this.writer.xadd(this.options.keys.edgeInbox(edgeId), "*", ...fieldsOf(packet));
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
    const trimmer = this.trimShardsLoop(streamKeys, signal);

    // First this consumer's own pending entries (left by a crash or a failed batch), from
    // cursor "0" onwards; then new entries (">").
    let pendingCursors: string[] | undefined = streamKeys.map(() => "0");
    let failures = 0;
    while (!signal.aborted) {
      let reply: StreamReply;
      try {
        reply = pendingCursors
          ? ((await reader.xreadgroup(
              "GROUP",
              SESSION_GROUP,
              consumer,
              "COUNT",
              readCount,
              "STREAMS",
              ...streamKeys,
              ...pendingCursors,
            )) as StreamReply)
          : ((await reader.xreadgroup(
              "GROUP",
              SESSION_GROUP,
              consumer,
              "COUNT",
              readCount,
              "BLOCK",
              blockMs,
              "STREAMS",
              ...streamKeys,
              ...streamKeys.map(() => ">"),
            )) as StreamReply);
      } catch (err) {
        if (signal.aborted) break;
        log.error({ err }, "shard inbox read failed; retrying");
        await delay(Math.min(5000, 100 * 2 ** failures++), signal);
        continue;
      }
      const batch: ShardEntry[] = [];
      for (const [key, entries] of reply ?? []) {
        const shard = shardOfKey.get(key) as number;
        for (const [id, fields] of entries) {
          batch.push({ id, shard, packet: packetOf(fields) as unknown as ShardPacket });
        }
        if (pendingCursors && entries.length > 0) {
          pendingCursors[streamKeys.indexOf(key)] = entries[entries.length - 1][0];
        }
      }
      if (pendingCursors && batch.length === 0) {
        pendingCursors = undefined;
        continue;
      }
      if (batch.length === 0) continue;
      try {
        await handler(batch);
        failures = 0;
      } catch (err) {
        log.error({ err, entries: batch.length }, "shard batch failed; it stays pending");
        await delay(Math.min(5000, 100 * 2 ** failures++), signal);
        pendingCursors = streamKeys.map(() => "0");
        continue;
      }
      await this.ack(batch);
    }
    await trimmer;
  }

  private async ack(batch: ShardEntry[]): Promise<void> {
    const byKey = new Map<string, string[]>();
    for (const entry of batch) {
      const key = this.options.keys.shardInbox(entry.shard);
      let ids = byKey.get(key);
      if (!ids) byKey.set(key, (ids = []));
      ids.push(entry.id);
    }
    await Promise.all([...byKey].map(([key, ids]) => this.writer.xack(key, SESSION_GROUP, ...ids)));
  }

  /** Trims each inbox below the oldest entry the group has not acknowledged (never further). */
  private async trimShardsLoop(streamKeys: string[], signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await delay(this.options.trimIntervalMs, signal);
      if (signal.aborted) break;
      try {
        await Promise.all(streamKeys.map((key) => this.trimShard(key)));
      } catch (err) {
        this.options.log.warn({ err }, "shard inbox trim failed; will retry");
      }
    }
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

  async consumeEdge(edgeId: string, handler: EdgeBatchHandler, signal: AbortSignal): Promise<void> {
    const { keys, log, readCount, blockMs, trimIntervalMs } = this.options;
    const key = keys.edgeInbox(edgeId);
    const reader = this.blockingClient(`megaphone-edge-${edgeId}`, signal);
    // Whatever an earlier process with this id left is for sockets that no longer exist.
    await this.writer.del(key);
    let cursor = "0-0";
    let lastTrim = Date.now();
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
        await delay(Math.min(5000, 100 * 2 ** failures++), signal);
        continue;
      }
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length > 0) {
        cursor = entries[entries.length - 1][0];
        await handler(entries.map(([, fields]) => packetOf(fields) as unknown as EdgePacket));
      }
      if (Date.now() - lastTrim >= trimIntervalMs && cursor !== "0-0") {
        lastTrim = Date.now();
        // The edge is the only reader: everything up to its cursor is done with.
        this.writer
          .xtrim(key, "MINID", "~", cursor)
          .catch((err) => log.warn({ err }, "edge inbox trim failed"));
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
