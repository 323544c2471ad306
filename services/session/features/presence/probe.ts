// RFC 6121 §4.3 (presence probes). The user's server probes, at initial presence, every contact
// the user is subscribed to (§4.2.2), and the contact's server answers with the last presence of
// each of the contact's available resources (§4.3.2). Every user here is local and the route
// store holds each resource's last presence, so probes are answered locally from the store: no
// probe stanza is ever sent, only the answers are written to the probing connection.
import type { Element } from "ltx";
import { parseJid } from "../../../shared/jid.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import { fullJidOf, type ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import type { Roster } from "../../../shared/stores/roster/roster-store.js";
import { availablePresences, isLocalAccount, presenceElement, readdressed } from "./delivery.js";
import { hasFrom, hasTo } from "./subscription-state.js";

/**
 * At initial presence: the presence of the user's other available resources (the implicit
 * subscription to oneself) and of each available resource of every contact with subscription
 * "to" or "both". Contacts with no available resource send nothing: the client starts with every
 * contact unavailable, and the store keeps no last unavailable presence to replay (§4.3.2).
 */
export async function answerProbesOnLogin(
  ctx: SessionContext,
  conn: ConnState,
  /** The user's roster, as the initial presence's broadcast read it. */
  roster: Roster,
): Promise<void> {
  const user = conn.bareJid as string;
  const full = fullJidOf(conn);
  const probed = [
    user,
    ...roster.items.filter((i) => hasTo(i.subscription) && i.jid !== user).map((i) => i.jid),
  ];
  const answers = await Promise.all(probed.map((bare) => availablePresences(ctx, bare)));
  for (const resource of answers.flat()) {
    if (resource.connId === conn.connId) continue;
    ctx.send(conn, readdressed(resource.presence, { to: full }));
  }
}

/**
 * A probe sent by a client (§4.3: normally a server's job, but harmless to answer): answered
 * like the contact's server would (§4.3.2), to this connection only. Presence is revealed only
 * to a subscriber (or to the user itself); a probe of an unknown user is ignored (§8.5.1).
 */
export async function answerClientProbe(
  ctx: SessionContext,
  conn: ConnState,
  probe: Element,
): Promise<void> {
  if (probe.attrs.to === undefined) return;
  const target = parseJid(probe.attrs.to);
  if (target.domain !== ctx.domain)
    throw new StanzaError("remote-server-not-found", "cancel", "no server-to-server here");
  if (!(await isLocalAccount(ctx, target))) return;
  const user = conn.bareJid as string;
  const contact = target.bareString();
  if (contact !== user) {
    const item = await ctx.stores.rosters.getItem(contact, user);
    if (!item || !hasFrom(item.subscription)) return;
  }
  const full = fullJidOf(conn);
  const resources = (await availablePresences(ctx, contact)).filter(
    (r) => r.connId !== conn.connId,
  );
  if (resources.length === 0) {
    ctx.send(conn, presenceElement({ type: "unavailable", from: contact, to: full }));
    return;
  }
  for (const r of resources) ctx.send(conn, readdressed(r.presence, { to: full }));
}
