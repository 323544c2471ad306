// XEP-0124 §8-§11 and XEP-0206 §3-§6, the session's side of sending: the core emits RFC 7395
// frames whatever the transport, and for a BOSH connection they are translated here, where
// they are handed over (LiveContext.writeToClient): <open/> gives the stream id (authid) and is
// dropped, <close/> and <stream:error/> end the session with a terminating <body/>, everything
// else waits in the connection's queue for the earliest held request.
import { sidOf } from "../../../shared/bosh-sid.js";
import { NS_FRAMING } from "../../../shared/ns.js";
import type { ConnState } from "../../core/connection.js";
import type { LiveContext } from "../live-context.js";
import {
  creationAttributes,
  responseBody,
  terminateBody,
  type BoshCondition,
} from "./bosh-body.js";
import type { BoshState } from "./bosh-state.js";
import { rerouteFromGone } from "../reroute.js";

export type BoshConn = ConnState & { bosh: BoshState };

export function isBosh(conn: ConnState | undefined): conn is BoshConn {
  return conn?.bosh !== undefined;
}

const FRAMING_OPEN = `<open xmlns="${NS_FRAMING}"`;
const FRAMING_CLOSE = `<close xmlns="${NS_FRAMING}"`;

/** Connections whose queue a unit's flush must look at, by unit (LiveContext.scoped()). */
const FLUSHES = new WeakMap<LiveContext, Set<BoshConn>>();

/**
 * Queues one frame for the client of a BOSH connection; the unit answers a held request with
 * what is queued once its other writes are issued (one answer for all of a unit's frames).
 */
export function queueBoshFrame(ctx: LiveContext, conn: BoshConn, frame: string): void {
  const state = conn.bosh;
  if (frame.startsWith(FRAMING_OPEN)) {
    // The stream id is ctx's conn.streamId already; nothing of <open/> reaches the client.
  } else if (frame.startsWith(FRAMING_CLOSE)) {
    state.terminate ??= {};
  } else if (frame.startsWith("<stream:error")) {
    state.terminate = { condition: "remote-stream-error" };
    state.out.push(frame);
  } else {
    const bytes = Buffer.byteLength(frame);
    if (state.outBytes + bytes > ctx.config.boshMaxPendingBytes) {
      overflow(ctx, conn, frame);
      return;
    }
    state.out.push(frame);
    state.outBytes += bytes;
  }
  scheduleFlush(ctx, conn);
}

function scheduleFlush(ctx: LiveContext, conn: BoshConn): void {
  const scheduled = FLUSHES.get(ctx);
  if (scheduled) {
    scheduled.add(conn);
    return;
  }
  const conns = new Set([conn]);
  FLUSHES.set(ctx, conns);
  ctx.afterEffects(async () => {
    FLUSHES.delete(ctx);
    for (const c of conns) answerHeld(ctx, c, ctx.now());
  });
}

/**
 * The client stopped collecting (its queue passed boshMaxPendingBytes): closed like a slow
 * WebSocket consumer. What it was never handed is rerouted (offline, another resource, bounced);
 * with XEP-0198 it is in the unacked queue, which the end of the connection settles.
 */
function overflow(ctx: LiveContext, conn: BoshConn, frame: string): void {
  const undelivered = [...conn.bosh.out, frame];
  conn.bosh.out = [];
  conn.bosh.outBytes = 0;
  if (conn.stage === "closed") return;
  ctx.log.info({ connId: conn.connId, jid: conn.bareJid }, "BOSH client too slow; closing");
  const sm = conn.sm !== undefined;
  ctx.track(
    (async () => {
      await ctx.endConnection(conn);
      if (sm) return;
      for (const stanza of undelivered)
        if (/^<(message|presence|iq)[\s>/]/.test(stanza))
          await rerouteFromGone(ctx, conn.connId, stanza);
    })(),
  );
}

/**
 * Answers held requests as XEP-0124 §10-§11 ask: the earliest one with everything queued (and
 * the end of the session, if due); any beyond `hold` (oldest first), and any held past `wait`
 * (by `nowMs`), with an empty body.
 */
export function answerHeld(ctx: LiveContext, conn: BoshConn, nowMs: number): void {
  const state = conn.bosh;
  if ((state.out.length > 0 || state.terminate) && state.held.length > 0) {
    const request = state.held.shift()!;
    respond(ctx, conn, request.rid, request.edge, takeQueued(ctx, conn));
    // §13: the session is over; no request it holds is left waiting for its edge's sweep.
    if (state.terminate)
      for (const other of state.held.splice(0))
        respond(ctx, conn, other.rid, other.edge, terminateBody());
  }
  while (state.held.length > state.hold) {
    const request = state.held.shift()!;
    respond(ctx, conn, request.rid, request.edge, emptyBody(ctx, conn));
  }
  while (state.held.length > 0 && state.held[0].atMs + state.waitMs <= nowMs) {
    const request = state.held.shift()!;
    respond(ctx, conn, request.rid, request.edge, emptyBody(ctx, conn));
  }
}

function takeQueued(ctx: LiveContext, conn: BoshConn): string {
  const state = conn.bosh;
  const frames = state.out;
  state.out = [];
  state.outBytes = 0;
  if (state.terminate) return terminateBody(state.terminate.condition, frames);
  return responseBody(firstAttributes(ctx, conn), frames);
}

function emptyBody(ctx: LiveContext, conn: BoshConn): string {
  return responseBody(firstAttributes(ctx, conn), []);
}

/** The session creation response's attributes on the first answer only (§7.2). */
function firstAttributes(ctx: LiveContext, conn: BoshConn): Record<string, string> {
  const state = conn.bosh;
  if (!state.creating) return {};
  state.creating = false;
  return creationAttributes({
    sid: sidOf(conn.connId, state.secret),
    waitSeconds: Math.round(state.waitMs / 1000),
    hold: state.hold,
    requests: state.requests,
    inactivitySeconds: Math.floor(ctx.config.boshInactivityMs / 1000),
    domain: ctx.domain,
    authid: conn.streamId,
    ver: state.ver,
  });
}

/** Sends `body` as the answer to request `rid` held at `edge`, and keeps it for a retry. */
export function respond(
  ctx: LiveContext,
  conn: BoshConn,
  rid: number,
  edge: string,
  body: string,
): void {
  const state = conn.bosh;
  state.sent = state.sent.filter((s) => s.rid !== rid && s.rid > state.rid - state.requests);
  state.sent.push({ rid, body });
  answerAt(ctx, edge, conn.connId, rid, body);
}

/**
 * Writes an answer to the edge holding the request. An edge that is gone stores nothing: the
 * client asks again with the same rid through another edge and gets the kept answer.
 */
export function answerAt(
  ctx: LiveContext,
  edge: string,
  connId: string,
  rid: number,
  body: string,
): void {
  if (ctx.log.isLevelEnabled("trace")) ctx.log.trace({ connId, rid, out: body }, "bosh answer");
  ctx.track(ctx.deps.bus.toEdge(edge, { k: "bosh", c: connId, r: String(rid), d: body }));
}

/** A terminating answer for a request that has no session to go to (§17). */
export function refuse(
  ctx: LiveContext,
  edge: string,
  connId: string,
  rid: number | string,
  condition: BoshCondition,
): void {
  answerAt(ctx, edge, connId, Number(rid), terminateBody(condition));
}
