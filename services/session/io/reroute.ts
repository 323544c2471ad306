// Stanzas routed to this process's connections, and stanzas that never reached the
// connection they were meant for. RFC 6121 §8.5.3.2.1 / §8.5.2: a message for a resource that
// is gone is handled as if sent to the bare JID (another resource, or offline storage); an iq
// get/set gets service-unavailable; when a message can be neither delivered nor stored, its
// sender gets the error (DESIGN.md accounting rule: delivered, stored or bounced, never lost).
import { parse, type Element } from "ltx";
import { parseJid } from "../../shared/jid.js";
import { StanzaError, errorReply } from "../../shared/xmpp-errors.js";
import type { ConnState } from "../core/connection.js";
import { routeMessage } from "../features/message/message.js";
import { unacked } from "../features/sm/sm-state.js";
import type { ConnectionTable } from "./connection-table.js";
import type { LiveContext } from "./live-context.js";

/** A stanza routed to one of our connections: write it out, or reroute it if it is gone. */
export async function deliverRouted(
  ctx: LiveContext,
  table: ConnectionTable,
  connId: string,
  xml: string,
  inline = false,
): Promise<void> {
  const conn = table.get(connId);
  if (!conn && !inline) {
    // A stanza for a connection a resumption moved (XEP-0198 §5), applied in the moved
    // session's turn (unitKeyOf): it goes to that session here, in this turn. Rerouting it
    // (rerouteFromGone, then deliver) may send it through the inbox once more, behind stanzas
    // routed to the new id meanwhile, which the client would then get first (RFC 6121 §8
    // per-recipient order; seen in rolling restarts: clients resuming from a draining edge).
    const successor = table.successorOf(connId);
    if (successor !== undefined && table.get(successor))
      return deliverRouted(ctx, table, successor, xml);
  }
  // From another connection's handler, a stanza may be written at once only if none queued
  // before it still waits in the inbox (per-recipient order), and only to a connection whose
  // stored state it leaves as it is. A BOSH connection keeps it in its state until a request
  // takes it; XEP-0198 counts it in the session's `sent` (the client's h on resumption and in
  // its acks) and keeps it until acknowledged. That state would be stored in the connection's
  // own turn, after the sender's unit stored its snapshot, which marks the sender's entry
  // applied: a member dying in between lost the stanza (BOSH), or the count (XEP-0198: the
  // resumption fails as the client's h is past what the next owner sent, and what the client
  // never read is resent by no one), as the next owner skips that entry. Through the inbox it
  // is stored before the sender's snapshot, and the recipient counts it in its own turn.
  // An XEP-0198 session whose turn is free is held by the sender's unit instead: the unit
  // changes its state here and saves it before its own snapshot (LiveContext.holdForDelivery),
  // which spares the stanza the inbox and the recipient a unit of its own.
  const keepsWhatIsSent = conn !== undefined && (conn.bosh !== undefined || conn.sm !== undefined);
  if (conn?.stage === "bound" && !(inline && (keepsWhatIsSent || table.hasQueuedRoutes(connId)))) {
    ctx.send(conn, xml);
    return;
  }
  if (inline && conn?.stage === "bound" && mayHoldFor(ctx, table, conn)) {
    ctx.sendHeld(conn, xml);
    ctx.deps.metrics.smLocalDeliveries.inc({ path: "held" });
    return;
  }
  if (inline && (!conn || conn.stage !== "closed")) {
    if (conn?.sm) ctx.deps.metrics.smLocalDeliveries.inc({ path: "inbox" });
    // Delivered from another connection's handler to a BOSH or XEP-0198 session, or while this
    // one is between its route and its bound stage (binding, rolled back, or not in the table
    // yet: a resumed session being moved onto it), or behind such a stanza: its state is not
    // ours to change or judge from here, so the stanza goes through its inbox, in order, and is
    // looked at again in its turn. Judging it gone from here would unbind the resource a
    // resumption just bound.
    // Counted under the id its unit will have (stream-management.ts unitKeyOf), which is
    // where it is counted off once applied.
    const queuedFor = table.successorOf(connId) ?? connId;
    table.routeQueued(queuedFor);
    ctx.track(
      ctx.routeViaInbox(connId, xml, true).catch((err: unknown) => {
        table.queuedRouteApplied(queuedFor); // never stored: nothing waits behind it
        throw err;
      }),
    );
    return;
  }
  await rerouteFromGone(ctx, connId, xml);
}

/**
 * Whether a stanza from another connection's unit may be sent to `conn` (bound, XEP-0198, not
 * BOSH) with its turn held: nothing queued for it in its inbox, and the stanza cannot take it
 * past its unacknowledged limit (which ends the session: that is for its own turn).
 */
function mayHoldFor(ctx: LiveContext, table: ConnectionTable, conn: ConnState): boolean {
  const sm = conn.sm;
  return (
    sm !== undefined &&
    conn.bosh === undefined &&
    !table.hasQueuedRoutes(conn.connId) &&
    unacked(sm) < ctx.config.smMaxUnackedStanzas &&
    ctx.holdForDelivery(conn)
  );
}

/**
 * `xml` was meant for `connId`, which no longer exists (or never got it). Removes every
 * binding still naming the connection first, so rerouting cannot pick it again (no loop), then
 * routes what may be routed again.
 */
export async function rerouteFromGone(
  ctx: LiveContext,
  connId: string,
  xml: string,
): Promise<void> {
  let stanza: Element;
  let to;
  try {
    stanza = parse(xml);
    // Most frames a closed socket leaves behind have no `to` (stream features, SASL, the
    // server's answers): no JID to parse, and no error built (with its stack) to say so.
    if (!stanza.attrs.to) return;
    to = parseJid(stanza.attrs.to);
  } catch {
    return; // not a stanza (stream features, SASL, framing): it only mattered to that socket
  }
  const bare = to.bareString();
  const bindings = await ctx.stores.routes.list(bare);
  for (const stale of bindings) {
    if (stale.connId === connId) await ctx.stores.routes.unbind(bare, stale.resource, connId);
  }
  // The full JID lives on in another connection (a resumed session, XEP-0198, or a login that
  // took the resource over): RFC 6121 §8.5.3.1 delivers to the resource that matches exactly.
  const holder =
    to.resource && bindings.find((b) => b.resource === to.resource && b.connId !== connId);
  if (holder) return ctx.deliver(holder.connId, stanza);
  if (stanza.is("iq")) return answerForGone(ctx, stanza);
  const type = stanza.attrs.type ?? "normal";
  if (!stanza.is("message") || (type !== "chat" && type !== "normal")) return;
  try {
    await routeMessage(ctx, to.bare(), stanza);
  } catch (err) {
    // Redis failures fail the batch (retried); a refusal (e.g. offline storage full) bounces.
    if (!(err instanceof StanzaError)) throw err;
    await bounce(ctx, stanza, err);
  }
}

/** The error for a message that could be neither delivered nor stored, to its sender. */
async function bounce(ctx: LiveContext, message: Element, err: StanzaError): Promise<void> {
  let sender;
  try {
    sender = parseJid(message.attrs.from ?? "");
  } catch {
    return;
  }
  if (!sender.local || sender.domain !== ctx.domain) return;
  ctx.log.debug({ err, to: message.attrs.to }, "bouncing a message that could not be rerouted");
  await routeMessage(ctx, sender, errorReply(message, err));
}

/**
 * RFC 6121 §8.5.3.2.1: an iq get/set for a resource that is gone gets service-unavailable,
 * delivered to the sender's resource (its stamped `from`) wherever it is.
 */
async function answerForGone(ctx: LiveContext, iq: Element): Promise<void> {
  if (iq.attrs.type !== "get" && iq.attrs.type !== "set") return;
  let sender;
  try {
    sender = parseJid(iq.attrs.from ?? "");
  } catch {
    return;
  }
  const resource = (await ctx.stores.routes.list(sender.bareString())).find(
    (r) => r.resource === sender.resource,
  );
  if (!resource) return;
  await ctx.deliver(resource.connId, errorReply(iq, new StanzaError("service-unavailable")));
}
