// XEP-0199 §4.1 server-to-client pings: a bound client silent for clientPingIntervalMs is
// pinged; one that does not answer within clientPingTimeoutMs is disconnected with
// `connection-timeout`. A connection that has not bound a resource authTimeoutMs after it
// opened is closed too, however chatty, so unauthenticated sockets cannot hold state.
import { randomBytes } from "node:crypto";
import { Element } from "ltx";
import { delay } from "../../shared/async/delay.js";
import { NS_PING } from "../../shared/ns.js";
import type { ConnState } from "../core/connection.js";
import type { ConnectionTable } from "./connection-table.js";
import type { LiveContext } from "./live-context.js";

/** How often the table is swept: often enough to honour the smallest timeout within 25%. */
export const PING_SWEEP_MIN_MS = 100;
export const PING_SWEEP_MAX_MS = 1000;

/** Checks one connection; true when it sent a ping. */
function checkConn(ctx: LiveContext, conn: ConnState, now: number): boolean {
  const { clientPingIntervalMs, clientPingTimeoutMs, authTimeoutMs } = ctx.config;
  if (conn.stage !== "bound") {
    if (now - (conn.openedAtMs ?? conn.lastActivityMs) > authTimeoutMs)
      ctx.close(conn, "connection-timeout", "no resource bound in time");
    return false;
  }
  if (conn.ping) {
    if (now - conn.ping.sentAtMs > clientPingTimeoutMs) {
      ctx.log.info({ connId: conn.connId, jid: conn.bareJid }, "client did not answer ping");
      ctx.close(conn, "connection-timeout", "no answer to ping");
    }
    return false;
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
    return true;
  }
  return false;
}

export async function runClientPinger(
  base: LiveContext,
  table: ConnectionTable,
  signal: AbortSignal,
): Promise<void> {
  const { clientPingTimeoutMs, authTimeoutMs } = base.config;
  const tickMs = Math.max(
    PING_SWEEP_MIN_MS,
    Math.min(PING_SWEEP_MAX_MS, Math.floor(Math.min(clientPingTimeoutMs, authTimeoutMs) / 4)),
  );
  while (!signal.aborted) {
    await delay(tickMs, signal);
    if (signal.aborted) break;
    const ctx = base.scoped();
    const now = ctx.now();
    const pinged: string[] = [];
    const checks = table.all().map(({ connId }) =>
      table.withConn(connId, async () => {
        const conn = table.get(connId);
        if (!conn) return;
        // Still in the table while closed: an earlier attempt to end it failed; retry.
        if (conn.stage === "closed") ctx.track(ctx.endConnection(conn));
        else if (checkConn(ctx, conn, now)) pinged.push(connId);
      }),
    );
    await Promise.allSettled(checks);
    try {
      await ctx.flush();
    } catch (err) {
      ctx.log.error({ err }, "client ping sweep writes failed; the next sweep retries");
      // A ping that never left must not time its client out.
      for (const connId of pinged) {
        await table.withConn(connId, async () => {
          const conn = table.get(connId);
          if (conn) conn.ping = undefined;
        });
      }
    }
  }
}
