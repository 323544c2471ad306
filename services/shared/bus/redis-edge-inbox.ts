// Reading one edge's inbox: a single reader, XREAD from its cursor, trimming what it read,
// and keeping the stream alive with an expiry it refreshes, so a dead edge leaves nothing.
// After each batch the edge handed to its sockets it records how far it got, so that when it
// dies, what it never delivered can be recovered (recover) instead of silently expiring.
import { randomBytes } from "node:crypto";
import { delay, retryDelayMs } from "../async/delay.js";
import type { LoopHealth } from "../async/loop-health.js";
import type { Redis } from "../redis/client.js";
import type { EdgeBatchHandler } from "./bus.js";
import { scriptCommands } from "../redis/script-commands.js";
import { edgePacketOf, type EdgePacket } from "./packets.js";
import { type RedisBusParts, type StreamReply } from "./redis-bus-parts.js";

/** How long a recovery may hold an inbox before another process may take over. */
const RECOVERY_LOCK_MS = 30000;
/** The inbox is checked (and re-created if Redis lost it) at least this often. */
const MAX_MAINTENANCE_INTERVAL_MS = 1000;

export class RedisEdgeInbox {
  constructor(private readonly parts: RedisBusParts) {}

  /**
   * The next XREAD, with `unrecorded` (the last entry handed to the sockets, if not recorded
   * yet) recorded in the same pipeline on the reader's connection: one write and one round
   * trip per batch, where a SET of its own cost both. The last position is written on its own
   * when the reader stops.
   */
  private async readNext(
    reader: Redis,
    cursorKey: string,
    unrecorded: string | undefined,
    ttlMs: number,
    [count, block, key, cursor]: readonly [number, number, string, string],
  ): Promise<StreamReply> {
    const pipeline = reader.pipeline();
    if (unrecorded !== undefined) pipeline.set(cursorKey, unrecorded, "PX", ttlMs);
    pipeline.xread("COUNT", count, "BLOCK", block, "STREAMS", key, cursor);
    const replies = (await pipeline.exec()) as [Error | null, unknown][];
    const [readError, reply] = replies[replies.length - 1];
    if (readError) throw readError;
    const setError = replies.length > 1 ? replies[0][0] : null;
    if (setError)
      this.parts.options.log.warn({ err: setError }, "recording the edge inbox position failed");
    return reply as StreamReply;
  }

  async recover(
    address: string,
    forward: (packets: EdgePacket[]) => Promise<void>,
  ): Promise<boolean> {
    const { keys, readCount } = this.parts.options;
    const { writer } = this.parts;
    const lock = keys.edgeRecoveryLock(address);
    const token = randomBytes(8).toString("hex");
    if ((await writer.set(lock, token, "PX", RECOVERY_LOCK_MS, "NX")) === null) return false;
    try {
      const inbox = keys.edgeInbox(address);
      const cursorKey = keys.edgeReadCursor(address);
      let cursor = (await writer.get(cursorKey)) ?? "0-0";
      for (;;) {
        const entries = await writer.xrange(inbox, `(${cursor}`, "+", "COUNT", readCount);
        if (entries.length === 0) {
          const scripts = scriptCommands(writer);
          if ((await scripts.mpEdgeInboxDeleteIfDrained(inbox, cursorKey, cursor)) === 1) break;
          continue;
        }
        const packets = entries
          .map(([, fields]) => edgePacketOf(fields))
          .filter((p): p is EdgePacket => p !== undefined);
        if (packets.length > 0) await forward(packets);
        cursor = entries[entries.length - 1][0];
        // A recovery that dies here resumes after what it already forwarded.
        await writer.set(cursorKey, cursor, "PX", RECOVERY_LOCK_MS * 10);
      }
      return true;
    } finally {
      await scriptCommands(writer)
        .mpReleaseLock(lock, token)
        .catch(() => undefined);
    }
  }

  /**
   * Creates the edge's inbox afresh and returns the id to read after. The inbox expires
   * `edgeInboxTtlMs` after its edge stops refreshing it: a dead edge leaves nothing behind.
   */
  private async createEdgeInbox(key: string): Promise<string> {
    const [, [, id]] = (await this.parts.writer
      .multi()
      .del(key)
      .xadd(key, "*", "k", "inbox-created")
      .pexpire(key, this.parts.options.edgeInboxTtlMs)
      .exec()) as [unknown, [unknown, string], unknown];
    return id;
  }

  async consume(
    edgeId: string,
    handler: EdgeBatchHandler,
    signal: AbortSignal,
    health?: LoopHealth,
  ): Promise<void> {
    // The blocking client lives exactly as long as this call, not as long as `signal`: a call
    // that fails (its first command, the handler) releases it, so an edge that restarts its
    // reader after each failure does not leak one connection per retry.
    const lifetime = new AbortController();
    const release = () => lifetime.abort();
    signal.addEventListener("abort", release, { once: true });
    try {
      const reader = this.parts.blockingClient(`megaphone-edge-${edgeId}`, lifetime.signal);
      await this.read(edgeId, reader, handler, signal, health);
    } finally {
      signal.removeEventListener("abort", release);
      release();
    }
  }

  private async read(
    edgeId: string,
    reader: Redis,
    handler: EdgeBatchHandler,
    signal: AbortSignal,
    health?: LoopHealth,
  ): Promise<void> {
    const { keys, log, readCount, blockMs, trimIntervalMs } = this.parts.options;
    const ttlMs = this.parts.options.edgeInboxTtlMs;
    const maintenanceMs = Math.min(trimIntervalMs, ttlMs / 4, MAX_MAINTENANCE_INTERVAL_MS);
    const cursorKey = keys.edgeReadCursor(edgeId);
    const key = keys.edgeInbox(edgeId);
    // Handed to the sockets and not recorded yet (readNext).
    let unrecorded: string | undefined;
    // Whatever an earlier process with this id left is for sockets that no longer exist.
    let cursor = await this.createEdgeInbox(key);
    let lastMaintenance = Date.now();
    let failures = 0;
    while (!signal.aborted) {
      let reply: StreamReply;
      try {
        const read = [readCount, blockMs, key, cursor] as const;
        reply = await this.readNext(reader, cursorKey, unrecorded, ttlMs, read);
        unrecorded = undefined;
        failures = 0;
        health?.progressed();
      } catch (err) {
        if (signal.aborted) break;
        health?.failed();
        log.error({ err }, "edge inbox read failed; retrying");
        await delay(retryDelayMs(failures++), signal);
        continue;
      }
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length > 0) {
        cursor = entries[entries.length - 1][0];
        const valid: EdgePacket[] = [];
        const ids: string[] = [];
        for (const [id, fields] of entries) {
          const packet = edgePacketOf(fields);
          if (!packet) continue;
          valid.push(packet);
          ids.push(id);
        }
        if (valid.length < entries.length) log.error("dropping malformed edge inbox entries");
        await handler(valid, ids);
        unrecorded = cursor;
      }
      if (Date.now() - lastMaintenance >= maintenanceMs) {
        lastMaintenance = Date.now();
        try {
          // The edge is the only reader: everything up to its cursor is done with.
          // The recorded position lives as long as the inbox, however quiet the edge.
          const trimmedTo = cursor;
          const [, [, refreshed]] = (await this.parts.timer.time("multi", () =>
            this.parts.writer
              .multi()
              .xtrim(key, "MINID", "~", trimmedTo)
              .pexpire(key, ttlMs)
              .pexpire(cursorKey, ttlMs)
              .exec(),
          )) as [unknown, [unknown, number]];
          if (refreshed === 0) {
            // Lost (Redis lost its data, or the edge stalled past the TTL): what was written
            // meanwhile found no inbox and went back to its sessions as undelivered.
            log.error({ edgeId }, "edge inbox was gone; created it again");
            cursor = await this.createEdgeInbox(key);
          }
        } catch (err) {
          log.warn({ err }, "edge inbox maintenance failed; will retry");
        }
      }
    }
    // A stopping edge drains its inbox from the recorded position: it must be the last one.
    if (unrecorded !== undefined)
      await this.parts.writer
        .set(cursorKey, unrecorded, "PX", ttlMs)
        .catch((err: unknown) => log.warn({ err }, "recording the edge inbox position failed"));
  }
}
