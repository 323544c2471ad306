// RFC 6121 §4.6 (directed presence) and presence errors: presence with a `to` other than a
// subscription stanza or probe goes to that entity only. The server remembers who got available
// directed presence without being subscribed, to send them unavailable presence later (§4.6.2),
// up to config.directedPresenceMaxRecipients and config.directedPresenceMaxBytes per connection.
// The list lives in its own store (ctx.stores.directed), not in the connection's snapshot, which
// is written on every batch that touches the connection: it is written only when it changes.
import type { Element } from "ltx";
import { parseJid, type Jid } from "../../../shared/jid.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import { isLocalAccount } from "./delivery.js";
import { hasFrom } from "./subscription-state.js";

export async function sendDirected(
  ctx: SessionContext,
  conn: ConnState,
  presence: Element,
): Promise<void> {
  const target = parseJid(presence.attrs.to);
  if (target.domain !== ctx.domain)
    throw new StanzaError("remote-server-not-found", "cancel", "no server-to-server here");
  // Presence to the server itself has no audience; to a missing account it is ignored (§8.5.1).
  if (!(await isLocalAccount(ctx, target))) return;
  const user = conn.bareJid as string;
  const recipient = target.toString();
  const unavailable = presence.attrs.type === "unavailable";
  const remember =
    !unavailable &&
    target.bareString() !== user &&
    !hasFrom((await ctx.stores.rosters.getItem(user, target.bareString()))?.subscription ?? "none");
  if (remember) {
    const added = await ctx.stores.directed.add(
      conn.shard,
      conn.connId,
      recipient,
      ctx.config.directedPresenceMaxRecipients,
      ctx.config.directedPresenceMaxBytes,
    );
    if (added === "full")
      throw new StanzaError("resource-constraint", "wait", "too many directed-presence recipients");
    // Already remembered, perhaps by a list an earlier unavailable of this batch will forget
    // once its deliveries are stored (broadcast.ts sendToDirected): remembered again after it.
    if (added === "present")
      ctx.afterEffects(() =>
        ctx.stores.directed.add(
          conn.shard,
          conn.connId,
          recipient,
          ctx.config.directedPresenceMaxRecipients,
          ctx.config.directedPresenceMaxBytes,
        ),
      );
  }
  await deliverPresence(ctx, target, presence);
  if (unavailable) await ctx.stores.directed.remove(conn.shard, conn.connId, [recipient]);
}

/**
 * Presence errors are routed back only to a connected full JID; anything else is dropped (an
 * error is never answered with an error, RFC 6120 §8.3.1).
 */
export async function routePresenceError(ctx: SessionContext, presence: Element): Promise<void> {
  if (presence.attrs.to === undefined) return;
  const target = parseJid(presence.attrs.to);
  if (target.domain !== ctx.domain || !target.resource) return;
  await deliverPresence(ctx, target, presence);
}

/**
 * RFC 6121 §8.5.2.1.1 and §8.5.3: to a bare JID, each available resource; to a full JID, that
 * resource if it is bound. Otherwise the presence is silently dropped (§8.5.3.2.1).
 */
export async function deliverPresence(
  ctx: SessionContext,
  target: Jid,
  stanza: Element,
): Promise<void> {
  const resources = await ctx.stores.routes.list(target.bareString());
  if (target.resource) {
    const bound = resources.find((r) => r.resource === target.resource);
    if (bound) await ctx.deliver(bound.connId, stanza);
    return;
  }
  await Promise.all(resources.filter((r) => r.available).map((r) => ctx.deliver(r.connId, stanza)));
}
