// Reading one edge's inbox: a single reader, XREAD from its cursor, trimming what it read,
// and keeping the stream alive with an expiry it refreshes, so a dead edge leaves nothing.
import { delay, retryDelayMs } from "../async/delay.js";
import type { Redis } from "../redis/client.js";
import type { EdgeBatchHandler } from "./bus.js";
import { edgePacketOf, type EdgePacket } from "./packets.js";
import {
  DEFAULT_EDGE_INBOX_TTL_MS,
  type RedisBusParts,
  type StreamReply,
} from "./redis-bus-parts.js";

export class RedisEdgeInbox {
  constructor(private readonly parts: RedisBusParts) {}

  /**
   * Creates the edge's inbox afresh and returns the id to read after. The inbox expires
   * `edgeInboxTtlMs` after its edge stops refreshing it: a dead edge leaves nothing behind.
   */
  private async createEdgeInbox(key: string): Promise<string> {
    const [, [, id]] = (await this.parts.writer
      .multi()
      .del(key)
      .xadd(key, "*", "k", "inbox-created")
      .pexpire(key, this.parts.options.edgeInboxTtlMs ?? DEFAULT_EDGE_INBOX_TTL_MS)
      .exec()) as [unknown, [unknown, string], unknown];
    return id;
  }

  async consume(edgeId: string, handler: EdgeBatchHandler, signal: AbortSignal): Promise<void> {
    // The blocking client lives exactly as long as this call, not as long as `signal`: a call
    // that fails (its first command, the handler) releases it, so an edge that restarts its
    // reader after each failure does not leak one connection per retry.
    const lifetime = new AbortController();
    const release = () => lifetime.abort();
    signal.addEventListener("abort", release, { once: true });
    try {
      const reader = this.parts.blockingClient(`megaphone-edge-${edgeId}`, lifetime.signal);
      await this.read(edgeId, reader, handler, signal);
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
  ): Promise<void> {
    const { keys, log, readCount, blockMs, trimIntervalMs } = this.parts.options;
    const ttlMs = this.parts.options.edgeInboxTtlMs ?? DEFAULT_EDGE_INBOX_TTL_MS;
    const maintenanceMs = Math.min(trimIntervalMs, ttlMs / 4);
    const key = keys.edgeInbox(edgeId);
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
          const [, [, refreshed]] = (await this.parts.writer
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
}
