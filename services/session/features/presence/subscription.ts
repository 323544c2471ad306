// RFC 6121 §3 (managing presence subscriptions) and §3.4 (pre-approval), with the state
// changes of Appendix A (subscription-state.ts). A subscription stanza is stamped with the bare
// JIDs of both parties (§3), processed as outbound by the user's server (§3.1.2, §3.1.5, §3.2.2,
// §3.3.2) and then as inbound by the contact's server (§3.1.3, §3.1.6, §3.2.3, §3.3.3). Only one
// domain is local and both parties are its users, so the "inbound" half runs right here, in the
// same handler, against the shared stores: no server-to-server hop is involved.
import type { Element } from "ltx";
import { parseJid } from "../../../shared/jid.js";
import type { RosterItem } from "../../../shared/stores/roster/roster-store.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import { pushRosterItem } from "../roster/push.js";
import {
  deliverToAvailable,
  deliverToInterested,
  isLocalAccount,
  presenceElement,
  readdressed,
  sendCurrentPresence,
  sendUnavailable,
} from "./delivery.js";
import {
  hasFrom,
  hasTo,
  inbound,
  outbound,
  subscriptionOf,
  type SubState,
  type SubscriptionType,
} from "./subscription-state.js";

/** A subscription stanza sent by a client (`from` already stamped with its full JID). */
export async function handleSubscription(
  ctx: SessionContext,
  conn: ConnState,
  presence: Element,
  type: SubscriptionType,
): Promise<void> {
  if (presence.attrs.to === undefined)
    throw new StanzaError("bad-request", "modify", `presence of type ${type} needs a 'to'`);
  const target = parseJid(presence.attrs.to);
  if (target.domain !== ctx.domain)
    throw new StanzaError("remote-server-not-found", "cancel", "no server-to-server here");
  if (target.local === "") return; // the server itself keeps no roster: nothing to subscribe to
  const user = conn.bareJid as string;
  const contact = target.bareString();
  // §3: "the server MUST stamp the outgoing presence stanza with the bare JID", and §3.1.3: a
  // request to a full JID is treated as sent to the bare JID.
  const stanza = readdressed(presence, { from: user, to: contact });
  await sendSubscription(ctx, user, contact, type, stanza);
}

/** A subscription stanza from `user` to `contact` (`stanza` stamped with both bare JIDs). */
export function subscriptionElement(
  user: string,
  contact: string,
  type: SubscriptionType,
): Element {
  return presenceElement({ type, from: user, to: contact });
}

/** The user's server: outbound processing, then routing to the contact. */
export async function sendSubscription(
  ctx: SessionContext,
  user: string,
  contact: string,
  type: SubscriptionType,
  stanza: Element,
): Promise<void> {
  const { item, state } = await readState(ctx, user, contact);
  const noAnswerDue = !state.pendingIn && !hasFrom(state.subscription);
  if (type === "subscribed" && noAnswerDue) return preApprove(ctx, user, contact, item);
  if (type === "unsubscribed" && noAnswerDue && item?.approved)
    return cancelPreApproval(ctx, user, item);

  const step = outbound(type, state);
  // §3.2.2: while the contact is still subscribed, it gets unavailable presence from each of
  // the user's available resources, before the unsubscribed itself.
  if (type === "unsubscribed" && hasFrom(state.subscription))
    await sendUnavailable(ctx, user, contact);
  await applyState(ctx, user, contact, item, state, step.next);
  if (!step.route) return;
  await routeSubscription(ctx, user, contact, type, stanza);
  // §3.1.5: after approving, the contact gets the current presence of each available resource.
  if (type === "subscribed") await sendCurrentPresence(ctx, user, contact);
}

/**
 * Hands a stamped subscription stanza from `from` to the server of `to`: this one. §8.5.1: one
 * for a local JID that has no account is silently ignored.
 */
export async function routeSubscription(
  ctx: SessionContext,
  from: string,
  to: string,
  type: SubscriptionType,
  stanza: Element,
): Promise<void> {
  if (!(await isLocalAccount(ctx, parseJid(to)))) return;
  await receiveSubscription(ctx, to, from, type, stanza);
}

/** The contact's server: inbound processing of `stanza` from `sender` to `owner`. */
async function receiveSubscription(
  ctx: SessionContext,
  owner: string,
  sender: string,
  type: SubscriptionType,
  stanza: Element,
): Promise<void> {
  const { item, state } = await readState(ctx, owner, sender);
  if (type === "subscribe" && item?.approved && !hasFrom(state.subscription))
    return approvePreApproved(ctx, owner, sender, item, state);

  const step = inbound(type, state);
  if (step.autoReply) {
    // §3.1.3 step 2: already subscribed, so the owner's server answers on the owner's behalf.
    return routeSubscription(
      ctx,
      owner,
      sender,
      "subscribed",
      subscriptionElement(owner, sender, "subscribed"),
    );
  }
  if (step.deliver) {
    // §3.1.3: a request goes to every available resource (and is kept for later ones below);
    // §3.1.6, §3.2.3, §3.3.3: answers and cancellations go to the interested resources.
    if (type === "subscribe") await deliverToAvailable(ctx, owner, stanza);
    else await deliverToInterested(ctx, owner, stanza);
  }
  await applyState(ctx, owner, sender, item, state, step.next, stanza.toString());
  // §3.3.3: the sender no longer gets the owner's presence, so it is told the owner is gone.
  if (type === "unsubscribe" && hasFrom(state.subscription))
    await sendUnavailable(ctx, owner, sender);
}

/**
 * §3.4: `subscribed` with no request to answer pre-approves a future one: the item is marked
 * approved (and created if absent) and pushed; the stanza is not routed.
 */
async function preApprove(
  ctx: SessionContext,
  user: string,
  contact: string,
  item: RosterItem | undefined,
): Promise<void> {
  if (item?.approved) return;
  const updated: RosterItem = {
    ...(item ?? { jid: contact, subscription: "none", groups: [] }),
    approved: true,
  };
  const version = await ctx.stores.rosters.setItem(user, updated);
  await pushRosterItem(ctx, user, updated, version);
}

/** §3.4: `unsubscribed` withdraws a pre-approval; it is not routed either. */
async function cancelPreApproval(
  ctx: SessionContext,
  user: string,
  item: RosterItem,
): Promise<void> {
  const updated: RosterItem = { ...item };
  delete updated.approved;
  const version = await ctx.stores.rosters.setItem(user, updated);
  await pushRosterItem(ctx, user, updated, version);
}

/**
 * §3.1.3 step 2 and §3.4: a request to an owner who pre-approved it is approved at once on the
 * owner's behalf, exactly as if the owner had sent `subscribed` (§3.1.5).
 */
async function approvePreApproved(
  ctx: SessionContext,
  owner: string,
  sender: string,
  item: RosterItem,
  state: SubState,
): Promise<void> {
  const next: SubState = {
    subscription: subscriptionOf(hasTo(state.subscription), true),
    pendingOut: state.pendingOut,
    pendingIn: false,
  };
  await applyState(ctx, owner, sender, item, state, next);
  await routeSubscription(
    ctx,
    owner,
    sender,
    "subscribed",
    subscriptionElement(owner, sender, "subscribed"),
  );
  await sendCurrentPresence(ctx, owner, sender);
}

/**
 * §2.5.2: after the user removed `contact` from the roster, every subscription between them
 * ends: `unsubscribed` if the contact was subscribed to the user or asking to be, and
 * `unsubscribe` if the user was subscribed to the contact or asking to be.
 */
export async function endSubscriptionsOfRemoved(
  ctx: SessionContext,
  user: string,
  removed: RosterItem,
  pendingIn: boolean,
): Promise<void> {
  const contact = removed.jid;
  if (hasFrom(removed.subscription) || pendingIn) {
    if (hasFrom(removed.subscription)) await sendUnavailable(ctx, user, contact);
    if (pendingIn) await ctx.stores.rosters.removePendingIn(user, contact);
    await routeSubscription(
      ctx,
      user,
      contact,
      "unsubscribed",
      subscriptionElement(user, contact, "unsubscribed"),
    );
  }
  if (hasTo(removed.subscription) || removed.ask === "subscribe")
    await routeSubscription(
      ctx,
      user,
      contact,
      "unsubscribe",
      subscriptionElement(user, contact, "unsubscribe"),
    );
}

/** True if `contact` has an unanswered request for `user`'s presence. */
export async function hasPendingIn(
  ctx: SessionContext,
  user: string,
  contact: string,
): Promise<boolean> {
  return (await ctx.stores.rosters.listPendingIn(user)).has(contact);
}

async function readState(
  ctx: SessionContext,
  owner: string,
  other: string,
): Promise<{ item: RosterItem | undefined; state: SubState }> {
  const [item, pendingIn] = await Promise.all([
    ctx.stores.rosters.getItem(owner, other),
    hasPendingIn(ctx, owner, other),
  ]);
  return {
    item,
    state: {
      subscription: item?.subscription ?? "none",
      pendingOut: item?.ask === "subscribe",
      pendingIn,
    },
  };
}

/**
 * Stores `next` for `owner`'s side of the subscription with `other`: the pending-in record
 * (with the request's XML, for delivery at the next initial presence) and the roster item,
 * which is created only when there is something to show (a request alone creates none, §3.1.3)
 * and pushed whenever it changes.
 */
async function applyState(
  ctx: SessionContext,
  owner: string,
  other: string,
  item: RosterItem | undefined,
  before: SubState,
  next: SubState,
  request?: string,
): Promise<void> {
  if (next.pendingIn !== before.pendingIn) {
    if (next.pendingIn) await ctx.stores.rosters.addPendingIn(owner, other, request as string);
    else await ctx.stores.rosters.removePendingIn(owner, other);
  }
  if (next.subscription === before.subscription && next.pendingOut === before.pendingOut) return;
  const updated: RosterItem = {
    ...(item ?? { jid: other, groups: [] }),
    subscription: next.subscription,
  };
  if (next.pendingOut) updated.ask = "subscribe";
  else delete updated.ask;
  // A pre-approval is used up once the other party is subscribed (§3.4).
  if (hasFrom(next.subscription)) delete updated.approved;
  const version = await ctx.stores.rosters.setItem(owner, updated);
  await pushRosterItem(ctx, owner, updated, version);
}
