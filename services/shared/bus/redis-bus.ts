// The bus on Redis Streams (DESIGN.md, "Packets and streams").
// - Writes go through one client that sends each turn's commands in one write (redis/client.ts):
//   an XADD costs no round trip of its own.
// - Each read loop has its own blocking client, so no XREAD waits behind another.
// - Shard inboxes are read by the consumer group "session" and acknowledged after the handler
//   resolves; they are trimmed with MINID below the oldest entry the group still needs.
import type { LoopHealth } from "../async/loop-health.js";
import { createBlockingRedis, createRedis, isCluster, type Redis } from "../redis/client.js";
import { UNTIMED, type CommandTimer } from "../redis/command-timer.js";
import type {
  Bus,
  DirectWriter,
  EdgeBatchHandler,
  ShardBacklog,
  ShardBatchHandler,
  ShardConsumeOptions,
} from "./bus.js";
import { InFlightBudget } from "./in-flight-budget.js";
import type { EdgePacket, ShardPacket } from "./packets.js";
import {
  SESSION_GROUP,
  packetOfInfo,
  streamGroups,
  streamInfo,
  type RedisBusOptions,
  type RedisBusParts,
} from "./redis-bus-parts.js";
import { RedisDirectWriter } from "./redis-direct-writer.js";
import { RedisEdgeInbox } from "./redis-edge-inbox.js";
import { RedisShardConsumer } from "./redis-shard-consumer.js";

export { SESSION_GROUP, type RedisBusOptions } from "./redis-bus-parts.js";

function fieldsOf(packet: ShardPacket | EdgePacket): string[] {
  const fields = ["k", packet.k, "c", packet.c];
  if ("e" in packet) fields.push("e", packet.e);
  if ("d" in packet) fields.push("d", packet.d);
  if ("q" in packet && packet.q) fields.push("q", packet.q);
  if ("o" in packet && packet.o) fields.push("o", packet.o);
  if ("i" in packet && packet.i) fields.push("i", packet.i);
  if ("r" in packet) fields.push("r", packet.r);
  if (packet.k === "bosh" && "s" in packet && packet.s) fields.push("s", packet.s);
  if (packet.k === "open" && packet.s) {
    fields.push("s", packet.s);
    if (packet.x) fields.push("x", packet.x);
    if (packet.t) fields.push("t", packet.t);
    if (packet.u) fields.push("u", packet.u);
  }
  return fields;
}

export class RedisBus implements Bus {
  private readonly writer: Redis;
  private readonly blockingClients = new Set<Redis>();
  private readonly shardConsumer: RedisShardConsumer;
  private readonly edgeInbox: RedisEdgeInbox;
  private readonly timer: CommandTimer;
  readonly direct?: DirectWriter;

  constructor(private readonly options: RedisBusOptions) {
    this.writer = createRedis(options.url, "megaphone-bus");
    this.writer.on("error", (err) => options.log.warn({ err }, "redis bus connection error"));
    this.timer = options.timer ?? UNTIMED;
    const parts: RedisBusParts = {
      options,
      writer: this.writer,
      timer: this.timer,
      blockingClient: (name, signal) => this.blockingClient(name, signal),
    };
    this.shardConsumer = new RedisShardConsumer(parts, new InFlightBudget(options.entriesInFlight));
    this.edgeInbox = new RedisEdgeInbox(parts);
    if (!isCluster(this.writer)) this.direct = new RedisDirectWriter(parts);
  }

  async toShard(shard: number, packet: ShardPacket): Promise<string> {
    return (await this.timer.time("xadd", () =>
      this.writer.xadd(this.options.keys.shardInbox(shard), "*", ...fieldsOf(packet)),
    )) as string;
  }

  async shardInboxEnd(shard: number): Promise<string> {
    try {
      const info = await streamInfo(this.writer, this.options.keys.shardInbox(shard));
      return packetOfInfo(info)["last-generated-id"] ?? "0-0";
    } catch (err) {
      if (String(err).includes("no such key")) return "0-0";
      throw err;
    }
  }

  /**
   * The id of the last frame in an edge's inbox, "0-0" for none (EdgeInboxEntries). The edge's
   * own marker, which it reads from, is not one: an inbox holding only that has nothing unread.
   * The last entry is never trimmed (the edge trims below its position), so it is the last
   * one written.
   */
  async edgeInboxEnd(edgeId: string): Promise<string> {
    const [last] = await this.timer.time("xrevrange", () =>
      this.writer.xrevrange(this.options.keys.edgeInbox(edgeId), "+", "-", "COUNT", 1),
    );
    return last === undefined || last[1][1] === "inbox-created" ? "0-0" : last[0];
  }

  writesEdgeInbox(): boolean {
    return true;
  }

  async toEdge(edgeId: string, packet: EdgePacket): Promise<boolean> {
    return (await this.toEdgeEntry(edgeId, packet)) !== null;
  }

  /** As toEdge, resolving with the entry's id, or null when the edge has no inbox (EdgeInboxEntries). */
  toEdgeEntry(edgeId: string, packet: EdgePacket): Promise<string | null> {
    // NOMKSTREAM: only the edge creates its inbox, so writes for an edge that died (or
    // stopped) never resurrect a stream nobody will read; XADD then answers nil.
    return this.timer.time("xadd", () =>
      this.writer.xadd(this.options.keys.edgeInbox(edgeId), "NOMKSTREAM", "*", ...fieldsOf(packet)),
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

  readingGroups(shards: readonly number[]): number[][] {
    if (isCluster(this.writer)) return shards.map((shard) => [shard]);
    return shards.length > 0 ? [[...shards]] : [];
  }

  consumeShards(
    shards: number[],
    consumer: string,
    handler: ShardBatchHandler,
    signal: AbortSignal,
    options?: ShardConsumeOptions,
  ): Promise<void> {
    return this.shardConsumer.consume(shards, consumer, handler, signal, options);
  }

  consumeEdge(
    edgeId: string,
    handler: EdgeBatchHandler,
    signal: AbortSignal,
    health?: LoopHealth,
  ): Promise<void> {
    return this.edgeInbox.consume(edgeId, handler, signal, health);
  }

  recoverEdgeInbox(
    address: string,
    forward: (packets: EdgePacket[]) => Promise<void>,
  ): Promise<boolean> {
    return this.edgeInbox.recover(address, forward);
  }

  async shardLag(shard: number): Promise<number> {
    return (await this.shardBacklog(shard)).lag;
  }

  /** Two commands on the writer, sent with the turn's others: calls for many shards share round trips. */
  async shardBacklog(shard: number): Promise<ShardBacklog> {
    const key = this.options.keys.shardInbox(shard);
    const [groups, length] = await Promise.all([
      this.timer.time("xinfo", () => streamGroups(this.writer, key)).catch(() => []),
      this.timer.time("xlen", () => this.writer.xlen(key)),
    ]);
    const group = groups.map(packetOfInfo).find((g) => g.name === SESSION_GROUP);
    // Without a group nobody has read anything yet: every entry is lag. Redis answers a nil
    // lag when it cannot count it (entries deleted inside the unread range): then the length
    // stands in, which is never less.
    const lag = group ? Number(group.lag) : NaN;
    return {
      lag: Number.isFinite(lag) ? lag : length,
      length,
      pending: Number(group?.pending ?? 0),
    };
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
