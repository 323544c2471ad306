// Reading shard inboxes as the consumer group "session" (DESIGN.md, "Packets and streams"):
// own pending entries first, then new ones; acknowledged only after the handler resolved;
// entries a dead consumer left pending are claimed (XAUTOCLAIM); inboxes are trimmed with
// MINID below the oldest entry the group still needs, never further. If Redis loses the group
// (a restart without persistence, FLUSHALL, failover to an empty replica), reads fail with
// NOGROUP: the group is created again, from the start of whatever the inbox holds now.
import { delay, retryDelayMs, settlesWithin } from "../async/delay.js";
import type { ShardBatchHandler, ShardConsumeOptions } from "./bus.js";
import type { InFlightBudget } from "./in-flight-budget.js";
import { shardPacketOf, type ShardEntry } from "./packets.js";
import { ShardAcks } from "./shard-acks.js";
import {
  createStreamGroup,
  streamGroups,
  SESSION_GROUP,
  packetOfInfo,
  type RedisBusParts,
  type StreamReply,
} from "./redis-bus-parts.js";

/**
 * A read (or claim) is sent only while the caller may read for at least this long beyond the
 * read's own blocking time: for network delay and the time between the check and the send.
 */
const READ_MARGIN_MS = 200;

export class RedisShardConsumer {
  constructor(
    private readonly parts: RedisBusParts,
    /** Shared by every read loop of this bus (one per shard a member serves). */
    private readonly budget: InFlightBudget,
  ) {}

  /** A reply error saying the stream or its group does not exist (any more). */
  static isGroupLost(err: unknown): boolean {
    return String(err).includes("NOGROUP");
  }

  private async ensureGroup(key: string): Promise<void> {
    try {
      await createStreamGroup(this.parts.writer, key, SESSION_GROUP, "0");
    } catch (err) {
      if (!String(err).includes("BUSYGROUP")) throw err;
    }
  }

  async consume(
    shards: number[],
    consumer: string,
    handler: ShardBatchHandler,
    signal: AbortSignal,
    { health, acknowledge, readableForMs, onHandled }: ShardConsumeOptions = {},
  ): Promise<void> {
    const { keys, log, readCount, blockMs } = this.parts.options;
    const readableMs = () => readableForMs?.() ?? Infinity;
    // Reads are not fenced (a blocking XREADGROUP cannot run in a script), so they are timed:
    // none is sent, or left blocking, past the moment the caller may read (its lease's end).
    // Otherwise a member that woke from a pause could take entries meant for the new owner.
    const untilReadable = async (): Promise<boolean> => {
      while (readableMs() <= READ_MARGIN_MS && !signal.aborted) await delay(50, signal);
      return !signal.aborted;
    };
    const streamKeys = shards.map((s) => keys.shardInbox(s));
    const shardOfKey = new Map(shards.map((s) => [keys.shardInbox(s), s]));
    for (const key of streamKeys) await this.ensureGroup(key);
    const reader = this.parts.blockingClient(`megaphone-session-${consumer}`, signal);
    // One call shape for both reads (pending and new); ioredis' overloads cannot express it.
    const xreadgroup = reader.xreadgroup.bind(reader) as unknown as (
      ...args: (string | number)[]
    ) => Promise<StreamReply>;
    // Set by maintenance when it claimed entries another consumer had left pending.
    const claims = { arrived: false };
    // Shards are owned exclusively: whatever another consumer left pending is a previous
    // owner's, and must be handled before anything newer, or the per-connection entry-id
    // idempotency would take the older entries for already applied ones.
    if (!(await untilReadable())) return;
    for (const key of streamKeys) await this.claimIdle(key, consumer, 0);
    const maintaining = this.maintainShardsLoop(
      streamKeys,
      consumer,
      claims,
      signal,
      () => readableMs() > READ_MARGIN_MS,
    );
    // Batches in read order, for onHandled: an id is reported once every batch read before it
    // is done too, so that everything at or below it has been handled.
    const readOrder: { lastIds: Map<number, string>; done: boolean }[] = [];
    const reportHandled = () => {
      while (readOrder.length > 0 && readOrder[0].done) {
        const { lastIds } = readOrder.shift() as (typeof readOrder)[number];
        for (const [shard, id] of lastIds) onHandled?.(shard, id);
      }
    };

    // First this consumer's own pending entries (left by a crash, a failed batch or claimed
    // from a dead consumer), from cursor "0" onwards; then new entries (">").
    let pendingCursors: string[] | undefined = streamKeys.map(() => "0");
    let failures = 0;
    // Batches handed to `handler` and not yet settled: the next batch is read while earlier
    // ones are in progress (a slow connection must not hold up the others). What bounds it is
    // the entries handed over and not yet acknowledged: the handler acknowledges each
    // connection's entries as they are done, so one slow connection holds only its own.
    const inFlight = new Set<Promise<void>>();
    const budget = this.budget;
    const acks = new ShardAcks(
      acknowledge ??
        (async (acks) => {
          await Promise.all(
            [...acks].map(([shard, ids]) =>
              this.parts.timer.time("xack", () =>
                this.parts.writer.xack(keys.shardInbox(shard), SESSION_GROUP, ...ids),
              ),
            ),
          );
        }),
      log,
      signal,
      RedisShardConsumer.isGroupLost,
    );
    let handlerFailed = false;
    const settleAll = () => Promise.all(inFlight);
    while (!signal.aborted) {
      if (claims.arrived) {
        claims.arrived = false;
        pendingCursors = streamKeys.map(() => "0");
      }
      if (handlerFailed) {
        // Its entries stay pending: once nothing is in flight, read them again from "0".
        await settleAll();
        handlerFailed = false;
        readOrder.length = 0; // the failed entries are read again and reported then
        await delay(retryDelayMs(failures++), signal);
        pendingCursors = streamKeys.map(() => "0");
        continue;
      }
      // Pending entries are read again from "0", so what is in flight must be settled first,
      // or it would be handed over twice at once.
      if (pendingCursors) await settleAll();
      await budget.room(signal);
      if (!(await untilReadable())) break;
      const block = Math.max(1, Math.min(blockMs, Math.floor(readableMs() - READ_MARGIN_MS)));
      let reply: StreamReply;
      const read = () =>
        xreadgroup(
          "GROUP",
          SESSION_GROUP,
          consumer,
          "COUNT",
          readCount,
          ...(pendingCursors ? [] : ["BLOCK", block]),
          "STREAMS",
          ...streamKeys,
          ...(pendingCursors ?? streamKeys.map(() => ">")),
        );
      try {
        // Only the reads of pending entries are round trips; a blocking read waits for entries.
        reply = await (pendingCursors ? this.parts.timer.time("xreadgroup", read) : read());
      } catch (err) {
        if (signal.aborted) break;
        health?.failed();
        if (RedisShardConsumer.isGroupLost(err)) {
          log.error({ err }, "shard inbox group lost (Redis lost its data?); creating it again");
          try {
            for (const key of streamKeys) await this.ensureGroup(key);
            pendingCursors = streamKeys.map(() => "0");
            continue;
          } catch (createErr) {
            log.error({ err: createErr }, "creating the shard inbox groups failed; retrying");
          }
        } else log.error({ err }, "shard inbox read failed; retrying");
        await delay(retryDelayMs(failures++), signal);
        continue;
      }
      health?.progressed();
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
        acks.ack(malformed);
      }
      if (pendingCursors && batch.length === 0 && malformed.length === 0) {
        pendingCursors = undefined;
        continue;
      }
      // A read of new entries that did not fill up took everything the inbox held: once the
      // batches handed over until now are done, the caller has caught up with the inbox.
      if (batch.length === 0) continue;
      budget.take(batch.length);
      const order = { lastIds: new Map<number, string>(), done: false };
      for (const entry of batch) order.lastIds.set(entry.shard, entry.id);
      readOrder.push(order);
      const acked = new Set<ShardEntry>();
      const done = (entries: readonly ShardEntry[], write: boolean): void => {
        const fresh = entries.filter((e) => !acked.has(e));
        for (const e of fresh) acked.add(e);
        if (fresh.length === 0) return;
        if (write) acks.ack(fresh);
        budget.give(fresh.length);
      };
      const ack = (entries: readonly ShardEntry[]) => done(entries, true);
      // Stored by the handler's own write (its snapshot's): written again, it would cost the
      // script call that write saved.
      const acknowledged = (entries: readonly ShardEntry[]) => done(entries, false);
      const handled: Promise<void> = handler(batch, ack, acknowledged).then(
        () => {
          failures = 0;
          ack(batch); // whatever the handler did not acknowledge itself
          order.done = true;
          reportHandled();
        },
        (err: unknown) => {
          if (!signal.aborted)
            log.error({ err, entries: batch.length }, "shard batch failed; it stays pending");
          // Not acknowledged: delivered again. No longer counted as in flight.
          budget.give(batch.length - acked.size);
          handlerFailed = true;
        },
      );
      const tracked: Promise<void> = handled.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      // Usually done at once: then the next read takes everything that arrived meanwhile.
      await settlesWithin(tracked, this.parts.options.slowBatchMs);
    }
    await settleAll();
    await acks.flush();
    await maintaining;
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
    mayClaim: () => boolean,
  ): Promise<void> {
    while (!signal.aborted) {
      if (!mayClaim()) {
        await delay(this.parts.options.trimIntervalMs, signal);
        continue;
      }
      try {
        for (const key of streamKeys) {
          if (await this.claimIdle(key, consumer)) claims.arrived = true;
        }
        await Promise.all(streamKeys.map((key) => this.trimShard(key)));
      } catch (err) {
        this.parts.options.log.warn({ err }, "shard inbox maintenance failed; will retry");
      }
      await delay(this.parts.options.trimIntervalMs, signal);
    }
  }

  /** XAUTOCLAIM JUSTID: moves long-idle pending entries to us; true if any moved. */
  private async claimIdle(
    key: string,
    consumer: string,
    idleMs = this.parts.options.claimIdleMs,
  ): Promise<boolean> {
    let cursor = "0-0";
    let claimed = 0;
    do {
      const from = cursor;
      const [next, ids] = (await this.parts.timer.time("xautoclaim", () =>
        this.parts.writer.xautoclaim(
          key,
          SESSION_GROUP,
          consumer,
          idleMs,
          from,
          "COUNT",
          this.parts.options.readCount,
          "JUSTID",
        ),
      )) as [string, string[]];
      cursor = next;
      claimed += ids.length;
    } while (cursor !== "0-0");
    if (claimed > 0)
      this.parts.options.log.warn({ key, claimed }, "claimed entries of a previous owner");
    return claimed > 0;
  }

  private async trimShard(key: string): Promise<void> {
    // XINFO before XPENDING, in one pipeline (executed in order): an entry delivered between
    // the two is above the last-delivered id we read, so it can never be trimmed.
    const [groups, pending] = await Promise.all([
      streamGroups(this.parts.writer, key),
      this.parts.writer.xpending(key, SESSION_GROUP) as Promise<
        [number, string | null, ...unknown[]]
      >,
    ]);
    let minId: string | undefined;
    if (Number(pending[0]) > 0 && pending[1]) minId = pending[1];
    else {
      const group = groups.map(packetOfInfo).find((g) => g.name === SESSION_GROUP);
      minId = group?.["last-delivered-id"];
    }
    if (minId && minId !== "0-0")
      await this.parts.timer.time("xtrim", () => this.parts.writer.xtrim(key, "MINID", "~", minId));
  }
}
