// XEP-0124 §10-§12 time limits of BOSH sessions, one deadline per connection on a wheel
// (deadline-wheel.ts), not a timer per request: a request held for `wait` with nothing to send
// is answered with an empty <body/>; a session with no request held for `inactivity` has lost
// its transport and ends (unavailable presence, XEP-0198 unacked stanzas settled).
import { delay } from "../../../shared/async/delay.js";
import type { ConnState } from "../../core/connection.js";
import type { ConnectionTable } from "../connection-table.js";
import { DeadlineWheel } from "../deadline-wheel.js";
import type { LiveContext } from "../live-context.js";
import { answerHeld, isBosh, type BoshConn } from "./bosh-output.js";

/** How often due deadlines are taken; a wait is honoured within this. */
export const BOSH_TICK_MS = 250;

/** When `conn` needs looking at: its oldest held request's wait, or its inactivity. */
export function nextBoshCheckMs(conn: BoshConn, inactivityMs: number): number {
  const { held, waitMs, lastRequestMs } = conn.bosh;
  if (held.length > 0) return held[0].atMs + waitMs;
  return lastRequestMs + inactivityMs + 1;
}

/**
 * A BOSH connection continued by a member that just took its shard over: the time the shard
 * had no owner does not count as inactivity. Requests the client sent meanwhile are still in
 * the shard inbox, applied only after this; judged by its stored lastRequestMs, the session
 * would end as lost before they are (§12's inactivity is the client's silence, not ours).
 */
export function continueAfterTakeover(conn: ConnState, nowMs: number): void {
  if (isBosh(conn)) conn.bosh.lastRequestMs = Math.max(conn.bosh.lastRequestMs, nowMs);
}

export class BoshTimers {
  private readonly wheel: DeadlineWheel;

  constructor(
    private readonly inactivityMs: number,
    nowMs: number,
  ) {
    this.wheel = new DeadlineWheel(BOSH_TICK_MS, nowMs);
  }

  get size(): number {
    return this.wheel.size;
  }

  /** `conn` changed (a request came, an answer left): its next deadline. */
  watch(conn: ConnState): void {
    if (isBosh(conn) && conn.stage !== "closed")
      this.wheel.schedule(conn.connId, nextBoshCheckMs(conn, this.inactivityMs));
  }

  /** Looks at `connId` at the next tick (loaded from a snapshot: its deadlines may be past). */
  watchId(connId: string): void {
    this.wheel.schedule(connId, 0);
  }

  takeDue(nowMs: number): string[] {
    return this.wheel.takeDue(nowMs);
  }
}

/** Visits the due connections once. */
export async function boshTick(
  base: LiveContext,
  table: ConnectionTable,
  timers: BoshTimers,
): Promise<void> {
  const ctx = base.scoped();
  const now = ctx.now();
  const visits = timers.takeDue(now).map((connId) =>
    table.withConn(connId, async () => {
      const conn = table.get(connId);
      if (!isBosh(conn) || conn.stage === "closed") return;
      const heldBefore = conn.bosh.held.length;
      answerHeld(ctx, conn, now);
      if (
        conn.bosh.held.length === 0 &&
        now - conn.bosh.lastRequestMs > base.config.boshInactivityMs
      ) {
        ctx.log.info({ connId, jid: conn.bareJid }, "BOSH session inactive; ending it");
        ctx.track(ctx.endConnection(conn));
        return;
      }
      // In the connection's turn, so its last applied entry's effects are stored: the
      // answered requests must not be answered again by a member that takes the shard over.
      if (conn.bosh.held.length !== heldBefore)
        ctx.track(ctx.deps.snapshots.save(conn.shard, connId, JSON.stringify(conn)));
      timers.watch(conn);
    }),
  );
  await Promise.allSettled(visits);
  try {
    await ctx.flush();
  } catch (err) {
    ctx.log.error({ err }, "BOSH timer writes failed; the client will ask again");
  }
}

export async function runBoshTimers(
  base: LiveContext,
  table: ConnectionTable,
  timers: BoshTimers,
  signal: AbortSignal,
): Promise<void> {
  const stopWatching = table.onSet((connId) => timers.watchId(connId));
  for (const conn of table.all()) if (isBosh(conn)) timers.watchId(conn.connId);
  try {
    while (!signal.aborted) {
      await delay(BOSH_TICK_MS, signal);
      if (signal.aborted) break;
      await boshTick(base, table, timers);
    }
  } finally {
    stopWatching();
  }
}
