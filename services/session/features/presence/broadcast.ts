// RFC 6121 §4.2 (initial presence), §4.4 (presence broadcast) and §4.5 (unavailable presence):
// a presence with no `to` goes to every contact subscribed to the user (subscription "from" or
// "both") and to all of the user's own available resources, including the sender (§4.2.2: "an
// entity is implicitly subscribed to its own presence"). Unavailable presence also goes to the
// entities that got directed presence (§4.6.2), as does the one sent when a connection ends.
//
// Resource takeover (RFC 6120 §7.7.2.2) and who tells the contacts. When connection B binds a
// resource that connection A holds, A and B may live in different session processes, and
// presence for the one full JID would come from two writers with no order between them: A's
// unavailable (sent when the conflict ends A) could reach a contact after B's available and
// leave it believing the user offline. So exactly one connection speaks for the resource at
// a time, decided by the route store's atomic steps on the binding:
// - bind (atomic) gives the resource to B and tells B whether A was available then. If so, B's
//   takeover hook broadcasts unavailable for the full JID itself, before B's bind is answered:
//   it is written (one Redis connection, in order) before anything B's client can send, so B's
//   own available always follows it. If B never becomes available, contacts are already right.
// - A, from then on, no longer holds the binding: its presence updates (a compare-and-set on
//   its connId) fail, and so it broadcasts nothing to contacts, at disconnect or before. A
//   disconnect whose update still succeeded happened before the takeover (the binding then says
//   unavailable, so B's hook stays quiet): A's unavailable is the only one.
// Either way each available A announced is retracted exactly once, by A before or by B at the
// takeover, and no unavailable from A can follow B's presence. A's directed-presence recipients
// (§4.6.2) are A's own list and still hear from A. What remains is the case fencing covers for
// every write (DESIGN.md, failure model): a process paused between a successful compare-and-set
// and its writes for longer than a client round trip.
import type { Element } from "ltx";
import { parseJid } from "../../../shared/jid.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import { fullJidOf, type ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import type { HandlerChain } from "../../core/handler-chain.js";
import type { TakenOver } from "../../../shared/stores/route/route-store.js";
import type { Roster } from "../../../shared/stores/roster/roster-store.js";
import {
  availableResources,
  deliverToAvailable,
  presenceElement,
  readdressed,
} from "./delivery.js";
import { deliverPresence } from "./directed.js";
import { answerProbesOnLogin } from "./probe.js";
import { hasFrom } from "./subscription-state.js";

/** RFC 6121 §4.7.2.3: an integer in −128..127; anything else counts as 0, the default. */
export function readPriority(presence: Element): number {
  const text = presence.getChildText("priority")?.trim() ?? "";
  if (!/^[+-]?\d+$/.test(text)) return 0;
  return Math.max(-128, Math.min(127, Number(text)));
}

/** An available presence with no `to`: initial (§4.2) the first time, else an update (§4.4). */
export async function broadcastAvailable(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  presence: Element,
): Promise<void> {
  const xml = presence.toString();
  // Presence is stored and fanned out to every contact's resources: its size is bounded
  // separately from the stanza limit (RFC 6120 §8.3.3.12, local policy).
  if (Buffer.byteLength(xml) > ctx.config.maxPresenceBytes)
    throw new StanzaError("policy-violation", "modify", "presence is too large");
  const initial = !conn.available;
  const wasNegative = conn.available && conn.priority < 0;
  const priority = readPriority(presence);
  conn.available = true;
  conn.priority = priority;
  const held = await ctx.stores.routes.update(
    conn.bareJid as string,
    conn.resource as string,
    conn.connId,
    { presence: xml, priority },
  );
  // Taken over by another connection (its conflict is on the way): the resource's presence is
  // no longer this connection's to announce (see the top of this file).
  if (!held) return;
  // Read once for the broadcast and, at login, the probes: one roster read per login less.
  const roster = await ctx.stores.rosters.get(conn.bareJid as string);
  await broadcast(ctx, conn, presence, true, roster);
  if (!initial) {
    if (wasNegative && priority >= 0)
      for (const hook of chain.onPriorityRaised) await hook(ctx, conn);
    return;
  }
  // §4.2.2: the server probes the contacts the user is subscribed to; answered from the
  // route store (see probe.ts). Then the pending requests (§3.1.3) and other features'
  // deliveries, such as offline messages.
  await answerProbesOnLogin(ctx, conn, roster);
  await deliverPendingRequests(ctx, conn);
  for (const hook of chain.onInitialPresence) await hook(ctx, conn);
}

/** §4.5: explicit unavailable presence with no `to`. */
export async function broadcastUnavailable(
  ctx: SessionContext,
  conn: ConnState,
  presence: Element,
): Promise<void> {
  const wasAvailable = conn.available;
  conn.available = false;
  // §4.5.2 is about an available resource; one that never was has told no contact anything,
  // and one taken over was retracted by its new holder.
  const held = await retractPresence(ctx, conn);
  const covered =
    wasAvailable && held ? await broadcast(ctx, conn, presence, true) : new Set<string>();
  await sendToDirected(ctx, conn, presence, covered);
}

/**
 * The disconnect hook: a connection that ends while available has its unavailable presence
 * broadcast by the server on the client's behalf (§4.5.2), unless its resource was taken over
 * (the new holder retracted it), and sent to its directed-presence recipients (§4.6.2).
 */
export async function unavailableOnDisconnect(ctx: SessionContext, conn: ConnState): Promise<void> {
  const full = fullJidOf(conn);
  if (!full) return;
  const unavailable = presenceElement({ type: "unavailable", from: full });
  let covered = new Set<string>();
  if (conn.available) {
    conn.available = false;
    if (await retractPresence(ctx, conn)) covered = await broadcast(ctx, conn, unavailable, false);
  }
  await sendToDirected(ctx, conn, unavailable, covered);
}

/**
 * The takeover hook (RFC 6120 §7.7.2.2): the new holder of a resource whose previous holder was
 * available broadcasts that resource's unavailable presence, before its bind is answered.
 */
export async function unavailableOnTakeover(
  ctx: SessionContext,
  conn: ConnState,
  previous: TakenOver,
): Promise<void> {
  if (!previous.available) return;
  const full = fullJidOf(conn) as string;
  await broadcast(ctx, conn, presenceElement({ type: "unavailable", from: full }), false);
}

/**
 * Clears this connection's stored presence. True when it is this connection's to retract:
 * it still held the resource, or nobody holds it any more; false when another connection took
 * the resource over, whose takeover hook retracted it (see the top of this file).
 */
async function retractPresence(ctx: SessionContext, conn: ConnState): Promise<boolean> {
  const user = conn.bareJid as string;
  const resource = conn.resource as string;
  if (await ctx.stores.routes.update(user, resource, conn.connId, { presence: undefined }))
    return true;
  return !(await ctx.stores.routes.list(user)).some((r) => r.resource === resource);
}

/**
 * Sends `presence` (stamped, no `to`) to the subscribed contacts' available resources and the
 * user's other available resources, and to this connection too when `echo`. Returns the bare
 * JIDs of the contacts it reached, which need no directed-presence copy.
 */
async function broadcast(
  ctx: SessionContext,
  conn: ConnState,
  presence: Element,
  echo: boolean,
  /** The user's roster when the caller read it already. */
  roster?: Roster,
): Promise<Set<string>> {
  const user = conn.bareJid as string;
  roster ??= await ctx.stores.rosters.get(user);
  // The user's own JID in the roster adds nothing: its resources are covered below.
  const contacts = roster.items
    .filter((item) => hasFrom(item.subscription) && item.jid !== user)
    .map((item) => item.jid);
  await Promise.all(
    contacts.map((contact) =>
      deliverToAvailable(ctx, contact, readdressed(presence, { to: contact })),
    ),
  );
  const own = await availableResources(ctx, user);
  await Promise.all(
    own
      .filter((r) => r.connId !== conn.connId)
      .map((r) => ctx.deliver(r.connId, readdressed(presence, { to: `${user}/${r.resource}` }))),
  );
  if (echo) ctx.send(conn, readdressed(presence, { to: fullJidOf(conn) }));
  return new Set(contacts);
}

/**
 * §4.6.2: unavailable presence to each directed-presence recipient not already reached. They are
 * forgotten only once these deliveries are stored: a failure in between sends them again.
 */
async function sendToDirected(
  ctx: SessionContext,
  conn: ConnState,
  unavailable: Element,
  covered: Set<string>,
): Promise<void> {
  const recipients = await ctx.stores.directed.list(conn.shard, conn.connId);
  if (recipients.length === 0) return;
  for (const recipient of recipients) {
    const target = parseJid(recipient);
    if (covered.has(target.bareString())) continue;
    await deliverPresence(ctx, target, readdressed(unavailable, { to: recipient }));
  }
  ctx.afterEffects(() => ctx.stores.directed.remove(conn.shard, conn.connId, recipients));
}

/** §3.1.3: every unanswered subscription request, again, at each initial presence. */
async function deliverPendingRequests(ctx: SessionContext, conn: ConnState): Promise<void> {
  const pending = await ctx.stores.rosters.listPendingIn(conn.bareJid as string);
  for (const request of pending.values()) ctx.send(conn, request);
}
