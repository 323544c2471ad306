// XEP-0199 §4.1 server-to-client pings: a bound client silent for clientPingIntervalMs is
// pinged; one that does not answer within clientPingTimeoutMs is disconnected with
// `connection-timeout`. Connections that never bound are dropped after the handshake
// timeout, so state for sockets that vanished unseen cannot pile up.
import { randomBytes } from "node:crypto";
import { Element } from "ltx";
import { NS_PING } from "../../shared/ns.js";
import { delay } from "../../shared/bus/memory-bus.js";
import type { ConnectionTable } from "./connection-table.js";
import type { LiveContext } from "./live-context.js";

export async function runClientPinger(
  ctx: LiveContext,
  table: ConnectionTable,
  signal: AbortSignal,
): Promise<void> {
  const { clientPingIntervalMs, clientPingTimeoutMs, handshakeTimeoutMs } = ctx.config;
  const tickMs = Math.max(100, Math.min(1000, Math.floor(clientPingTimeoutMs / 4)));
  while (!signal.aborted) {
    await delay(tickMs, signal);
    if (signal.aborted) break;
    const now = ctx.now();
    for (const { connId } of table.all()) {
      table
        .withConn(connId, async () => {
          const conn = table.get(connId);
          if (!conn || conn.stage === "closed") return;
          if (conn.stage !== "bound") {
            // Idle far past any handshake: the socket is gone or the client stalled.
            if (now - conn.lastActivityMs > handshakeTimeoutMs + clientPingIntervalMs)
              ctx.close(conn, "connection-timeout");
            return;
          }
          if (conn.ping) {
            if (now - conn.ping.sentAtMs > clientPingTimeoutMs) {
              ctx.log.info({ connId, jid: conn.bareJid }, "client did not answer ping");
              ctx.close(conn, "connection-timeout", "no answer to ping");
            }
            return;
          }
          if (now - conn.lastActivityMs >= clientPingIntervalMs) {
            conn.ping = { id: `ping-${randomBytes(6).toString("hex")}`, sentAtMs: now };
            const iq = new Element("iq", {
              type: "get",
              id: conn.ping.id,
              from: ctx.domain,
              to: `${conn.bareJid}/${conn.resource}`,
            });
            iq.c("ping", { xmlns: NS_PING });
            ctx.send(conn, iq);
          }
        })
        .catch((err) => ctx.log.error({ err, connId }, "client ping failed"));
    }
    await ctx.flush().catch((err) => ctx.log.error({ err }, "client ping writes failed"));
  }
}
