// XEP-0199 §4.1 server-to-client pings: a bound client silent for clientPingIntervalMs is
// pinged; one that does not answer within clientPingTimeoutMs is disconnected with
// `connection-timeout`. A session with XEP-0198 is asked for an ack (<r/>, §4) instead, which
// it must answer at once with an <a/>: an iq ping is a stanza and would be counted in the
// session's `sent` by a ping tick, which stores no snapshot (only the unit applying the answer
// would), so a member dying within the round trip left the stored count one short of the
// client's h, and its resumption failed. An <r/> and its <a/> count nothing. A connection
// that has not bound a resource authTimeoutMs after it opened is closed too, however chatty,
// so unauthenticated sockets cannot hold state.
//
// Each connection has a deadline on a wheel (deadline-wheel.ts), so a tick looks only at the
// connections that are due, not at every connection. The packet path moves lastActivityMs
// without telling the pinger, so a deadline is a time to look again, never later than the
// earliest moment the connection could need something: a visit that finds nothing to do
// just schedules the next one.
import { randomId } from "../../shared/random-id.js";
import { Element } from "ltx";
import { delay } from "../../shared/async/delay.js";
import type { Config } from "../../shared/config.js";
import { NS_PING } from "../../shared/ns.js";
import type { ConnState } from "../core/connection.js";
import type { ConnectionTable } from "./connection-table.js";
import { DeadlineWheel } from "./deadline-wheel.js";
import type { LiveContext } from "./live-context.js";
import { requestAck, startHibernation } from "./stream-management.js";

/** How often due deadlines are taken: often enough to honour the smallest timeout within 25%. */
export const PING_SWEEP_MIN_MS = 100;
export const PING_SWEEP_MAX_MS = 1000;

export type PingTimeouts = Pick<
  Config,
  "clientPingIntervalMs" | "clientPingTimeoutMs" | "authTimeoutMs"
>;

export function pingTickMs(timeouts: PingTimeouts): number {
  const { clientPingTimeoutMs, authTimeoutMs } = timeouts;
  return Math.max(
    PING_SWEEP_MIN_MS,
    Math.min(PING_SWEEP_MAX_MS, Math.floor(Math.min(clientPingTimeoutMs, authTimeoutMs) / 4)),
  );
}

/**
 * When `conn` must be looked at next. Activity only moves lastActivityMs forward, binding
 * only replaces the auth deadline by a ping deadline from lastActivityMs, and an answered
 * ping only clears `ping`: so the earliest of the deadlines the connection may reach is
 * never later than the one it will have.
 */
export function nextCheckMs(conn: ConnState, timeouts: PingTimeouts): number {
  const { clientPingIntervalMs, clientPingTimeoutMs, authTimeoutMs } = timeouts;
  // XEP-0198: a hibernating session has no client to ping; it ends at its deadline.
  if (conn.sm?.hibernateUntilMs !== undefined) return conn.sm.hibernateUntilMs + 1;
  const pingDue = conn.lastActivityMs + clientPingIntervalMs;
  if (conn.stage !== "bound")
    // `+ 1`: the checks below close only strictly past the timeout.
    return Math.min((conn.openedAtMs ?? conn.lastActivityMs) + authTimeoutMs + 1, pingDue);
  if (conn.ping)
    return Math.min(
      conn.ping.sentAtMs + clientPingTimeoutMs + 1,
      conn.ping.sentAtMs + clientPingIntervalMs,
    );
  return pingDue;
}

/** The connections' deadlines; a tick takes only the due ones. */
export class PingSchedule {
  private readonly wheel: DeadlineWheel;

  constructor(
    private readonly timeouts: PingTimeouts,
    readonly tickMs: number,
    nowMs: number,
  ) {
    this.wheel = new DeadlineWheel(tickMs, nowMs);
  }

  get size(): number {
    return this.wheel.size;
  }

  /** Looks at `connId` at the next tick (a new connection, or state replaced wholesale). */
  watch(connId: string): void {
    this.wheel.schedule(connId, 0);
  }

  /** After a visit: the next one, at least a tick away (a visit never spins). */
  reschedule(conn: ConnState, nowMs: number): void {
    this.wheel.schedule(
      conn.connId,
      Math.max(nextCheckMs(conn, this.timeouts), nowMs + this.tickMs),
    );
  }

  /** Connection ids due by `nowMs`, removed from the schedule until rescheduled. */
  takeDue(nowMs: number): string[] {
    return this.wheel.takeDue(nowMs);
  }
}

/** What a check did: sent a ping, or found a session to end (its caller ends it). */
type CheckOutcome = "pinged" | "end" | undefined;

/** Checks one connection. */
function checkConn(ctx: LiveContext, conn: ConnState, now: number): CheckOutcome {
  const { clientPingIntervalMs, clientPingTimeoutMs, authTimeoutMs } = ctx.config;
  if (conn.sm?.hibernateUntilMs !== undefined) {
    if (now <= conn.sm.hibernateUntilMs) return undefined;
    ctx.log.info({ connId: conn.connId, jid: conn.bareJid }, "session was not resumed in time");
    return "end";
  }
  if (conn.stage !== "bound") {
    if (now - (conn.openedAtMs ?? conn.lastActivityMs) > authTimeoutMs)
      ctx.close(conn, "connection-timeout", "no resource bound in time");
    return undefined;
  }
  if (conn.ping) {
    if (now - conn.ping.sentAtMs > clientPingTimeoutMs) {
      ctx.log.info({ connId: conn.connId, jid: conn.bareJid }, "client did not answer ping");
      // XEP-0198: its transport is as good as lost; the socket goes, the session waits (the
      // edge's close packet saves that in the snapshot).
      if (startHibernation(ctx, conn, "no answer to ping")) {
        ctx.toEdgeClose(conn.edgeId, conn.connId);
        return undefined;
      }
      ctx.close(conn, "connection-timeout", "no answer to ping");
    }
    return undefined;
  }
  if (now - conn.lastActivityMs >= clientPingIntervalMs) {
    if (conn.sm) {
      conn.ping = { sentAtMs: now };
      requestAck(ctx, conn);
      return "pinged";
    }
    conn.ping = { id: `ping-${randomId(6, "hex")}`, sentAtMs: now };
    const iq = new Element("iq", {
      type: "get",
      id: conn.ping.id,
      from: ctx.domain,
      to: `${conn.bareJid}/${conn.resource}`,
    });
    iq.c("ping", { xmlns: NS_PING });
    ctx.send(conn, iq);
    return "pinged";
  }
  return undefined;
}

/** Visits the due connections once; the ids visited (for tests: only due ones are). */
export async function pingTick(
  base: LiveContext,
  table: ConnectionTable,
  schedule: PingSchedule,
): Promise<string[]> {
  const ctx = base.scoped();
  const now = ctx.now();
  const visited = schedule.takeDue(now);
  const pinged: string[] = [];
  const checks = visited.map((connId) =>
    table.withConn(connId, async () => {
      const conn = table.get(connId);
      if (!conn) return; // gone: it leaves the schedule
      // Still in the table while closed: an earlier attempt to end it failed; retry.
      const outcome = conn.stage === "closed" ? "end" : checkConn(ctx, conn, now);
      if (outcome === "pinged") pinged.push(connId);
      if (outcome === "end") await endInItsTurn(base, conn);
      schedule.reschedule(conn, now);
    }),
  );
  await Promise.allSettled(checks);
  try {
    await ctx.flush();
  } catch (err) {
    ctx.log.error({ err }, "client ping writes failed; the next tick retries");
    // A ping that never left must not time its client out.
    for (const connId of pinged) {
      await table.withConn(connId, async () => {
        const conn = table.get(connId);
        if (!conn) return;
        conn.ping = undefined;
        schedule.reschedule(conn, now);
      });
    }
  }
  return visited;
}

/**
 * Ends `conn` and holds its turn until what ending stores is stored, as a unit does: an
 * expired session's unacknowledged stanzas go to another resource or offline storage, and a
 * stanza routed to it meanwhile, applied in its next turn, must be stored after them (RFC 6121
 * §8 per-recipient order). Released before that, the later stanza could be stored offline
 * first. A failure is logged; the connection stays in the table, closed, for the next tick.
 */
async function endInItsTurn(base: LiveContext, conn: ConnState): Promise<void> {
  const own = base.scoped();
  try {
    await own.endConnection(conn);
    await own.flush();
  } catch (err) {
    own.log.error(
      { err, connId: conn.connId },
      "ending a connection failed; the next tick retries",
    );
  }
}

export async function runClientPinger(
  base: LiveContext,
  table: ConnectionTable,
  signal: AbortSignal,
): Promise<void> {
  const schedule = new PingSchedule(base.config, pingTickMs(base.config), base.now());
  const stopWatching = table.onSet((connId) => schedule.watch(connId));
  for (const conn of table.all()) schedule.watch(conn.connId);
  try {
    while (!signal.aborted) {
      await delay(schedule.tickMs, signal);
      if (signal.aborted) break;
      await pingTick(base, table, schedule);
    }
  } finally {
    stopWatching();
  }
}
