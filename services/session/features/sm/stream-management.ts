// XEP-0198 (Stream Management) §3 enabling, §4 acks, §5 resumption as the client sees it on
// its own connection. The shell (io/stream-management.ts) keeps the unacked queue, hibernates
// a session whose transport is lost, and moves a session to the connection that resumes it.
import { Element } from "ltx";
import { NS_SM, NS_STANZA_ERRORS } from "../../../shared/ns.js";
import { StreamError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import { ackedTotal, newSmState, parseH, shardOfSmId, wireH } from "./sm-state.js";

/** RFC 6120 §8.3.3 conditions used in <failed/>. */
export type SmFailure = "item-not-found" | "unexpected-request" | "undefined-condition";

/** `<failed/>` with a stanza error condition, and the h of the old session when known (§5). */
export function failedElement(condition: SmFailure, h?: number): Element {
  const failed = new Element(
    "failed",
    h === undefined ? { xmlns: NS_SM } : { xmlns: NS_SM, h: wireH(h) },
  );
  failed.c(condition, { xmlns: NS_STANZA_ERRORS });
  return failed;
}

/** The stream feature advertised after authentication (§3). */
export function smFeature(): Element {
  return new Element("sm", { xmlns: NS_SM });
}

/** Handles an element of the urn:xmpp:sm:3 namespace in any stage. */
export async function handleSmElement(
  ctx: SessionContext,
  conn: ConnState,
  el: Element,
): Promise<void> {
  switch (el.getName()) {
    case "enable":
      return enable(ctx, conn, el);
    case "r":
      // §4: answered at once with what we handled; before enabling there is nothing to count.
      if (conn.sm) ctx.send(conn, new Element("a", { xmlns: NS_SM, h: wireH(conn.sm.handled) }));
      return;
    case "a":
      return ack(ctx, conn, el);
    case "resume":
      return resume(ctx, conn, el);
    default:
      throw new StreamError(
        "unsupported-stanza-type",
        `<${el.getName()}/> is not a client element of XEP-0198`,
      );
  }
}

/**
 * §3: only once, and only after binding (a resumable session needs a full JID). Once enabled,
 * every stanza must pass through this session to be counted: senders that were allowed to
 * write to this connection's edge (two-hop delivery) are stopped first, in the store, before
 * <enabled/> is written, so whatever they wrote directly precedes it.
 */
async function enable(ctx: SessionContext, conn: ConnState, el: Element): Promise<void> {
  if (conn.stage === "bound" && !conn.sm && conn.available)
    await ctx.stores.routes.update(conn.bareJid as string, conn.resource as string, conn.connId, {
      edge: undefined,
    });
  ctx.send(conn, enableSm(ctx, conn, el));
}

/**
 * Enables stream management on a bound connection as `el` (an <enable/>) asks: the answer,
 * <enabled/> or <failed/>. Also Bind 2's inline <enable/> (XEP-0386, answered in <bound/>).
 */
export function enableSm(ctx: SessionContext, conn: ConnState, el: Element): Element {
  if (conn.stage !== "bound" || conn.sm) return failedElement("unexpected-request");
  // Not over BOSH: its session outlives its HTTP requests and edges by itself (XEP-0206), and
  // moving it onto another transport would leave its held requests with no one to answer them.
  const resume = (el.attrs.resume === "true" || el.attrs.resume === "1") && !conn.bosh;
  conn.sm = newSmState(conn.shard, resume);
  const enabled = new Element("enabled", { xmlns: NS_SM, id: conn.sm.id });
  if (resume) {
    enabled.attrs.resume = "true";
    enabled.attrs.max = String(Math.floor(ctx.config.resumptionTimeoutMs / 1000));
  }
  return enabled;
}

/**
 * §4: the client acknowledges stanzas; those are forgotten once this unit's writes are stored.
 * An h past what we sent is a broken counter: the stream ends (§4, handled-count-too-high).
 */
function ack(ctx: SessionContext, conn: ConnState, el: Element): void {
  const sm = conn.sm;
  if (!sm) return;
  const h = parseH(el.attrs.h);
  if (h === undefined) throw new StreamError("bad-format", "h must be an unsigned 32-bit integer");
  // The client is there: this answers the server's liveness check (client-pinger.ts), or
  // crossed it on the wire.
  if (conn.ping) conn.ping = undefined;
  const acked = ackedTotal(sm.acked, h);
  if (acked > sm.sent)
    throw new StreamError(
      "undefined-condition",
      `h acknowledges more than the ${sm.sent} stanzas sent`,
    );
  if (acked === sm.acked) return;
  const { shard } = conn;
  const { id } = sm;
  const from = sm.acked + 1;
  sm.acked = acked;
  ctx.afterEffects(() => ctx.stores.smQueues.drop(shard, id, from, acked));
}

/**
 * §5: after SASL and instead of binding. The session lives on the shard its id names: the
 * request goes there, and this connection waits for the answer (a `resume-result` packet).
 */
function resume(ctx: SessionContext, conn: ConnState, el: Element): void {
  if (conn.stage !== "restarted") {
    ctx.send(conn, failedElement("unexpected-request"));
    return;
  }
  const previd = el.attrs.previd ?? "";
  const h = parseH(el.attrs.h);
  if (h === undefined) throw new StreamError("bad-format", "h must be an unsigned 32-bit integer");
  if (shardOfSmId(previd, ctx.config.shardCount) === undefined) {
    ctx.observe.resumption("failed");
    ctx.send(conn, failedElement("item-not-found"));
    return;
  }
  conn.stage = "resuming";
  ctx.requestResume(conn, { previd, h, jid: conn.bareJid as string });
}

/** §4: a stanza handled from the client counts towards our h. */
export function countInbound(conn: ConnState): void {
  if (conn.sm) conn.sm.handled++;
}
