// RFC 6121 §3 (managing presence subscriptions) and §3.4 (pre-approval), with the state
// changes of Appendix A (subscription-state.ts). A subscription stanza is stamped with the bare
// JIDs of both parties (§3), processed as outbound by the user's server (§3.1.2, §3.1.5, §3.2.2,
// §3.3.2) and then as inbound by the contact's server (§3.1.3, §3.1.6, §3.2.3, §3.3.3). Only one
// domain is local and both parties are its users, so the "inbound" half runs right here, in the
// same handler, against the shared stores: no server-to-server hop is involved.
//
// Each side's roster item changes through modifyRosterItem (a compare-and-set retried on
// conflict), so the session processes of the two parties cannot undo each other's changes.
// The decision (route? deliver? new state?) is made inside that step from the item it commits
// against; stanzas are sent only after the commit. Pending-in records (§3.1.3) are kept apart
// from items, bounded by config.rosterMaxItems and config.pendingSubscriptionMaxBytes per user;
// a request past either is dropped.
import type { Element } from "ltx";
import { parseJid } from "../../../shared/jid.js";
import type { RosterItem } from "../../../shared/stores/roster/roster-store.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import { modifyRosterItemWith, type ItemChange, type ItemUpdate } from "../roster/modify-item.js";
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
  type InboundStep,
  type OutboundStep,
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

/** What the user's server decided for an outbound subscription stanza. */
type OutboundPlan =
  /** §3.4: a pre-approval given or withdrawn; never routed. */
  | { kind: "pre-approval"; item: ItemUpdate }
  | { kind: "step"; state: SubState; step: OutboundStep; item: ItemUpdate };

function planOutbound(
  type: SubscriptionType,
  contact: string,
  item: RosterItem | undefined,
  pendingIn: boolean,
): OutboundPlan {
  const state = stateOf(item, pendingIn);
  const noAnswerDue = !state.pendingIn && !hasFrom(state.subscription);
  if (type === "subscribed" && noAnswerDue) {
    // §3.4: `subscribed` with no request to answer pre-approves a future one: the item is
    // marked approved (and created if absent); the stanza is not routed.
    if (item?.approved) return { kind: "pre-approval", item: "unchanged" };
    const approved: RosterItem = {
      ...(item ?? { jid: contact, subscription: "none", groups: [] }),
      approved: true,
    };
    return { kind: "pre-approval", item: approved };
  }
  if (type === "unsubscribed" && noAnswerDue && item?.approved) {
    // §3.4: `unsubscribed` withdraws a pre-approval; it is not routed either.
    const withdrawn: RosterItem = { ...item };
    delete withdrawn.approved;
    return { kind: "pre-approval", item: withdrawn };
  }
  const step = outbound(type, state);
  return { kind: "step", state, step, item: itemFor(item, contact, state, step.next) };
}

/** The user's server: outbound processing, then routing to the contact. */
export async function sendSubscription(
  ctx: SessionContext,
  user: string,
  contact: string,
  type: SubscriptionType,
  stanza: Element,
): Promise<void> {
  const pendingIn = await ctx.stores.rosters.hasPendingIn(user, contact);
  const { plan, change } = await modifyRosterItemWith(ctx, user, contact, (item) =>
    planOutbound(type, contact, item, pendingIn),
  );
  if (plan.kind === "pre-approval") return pushChange(ctx, user, change);

  const { state, step } = plan;
  // §3.2.2: while the contact is still subscribed, it gets unavailable presence from each of
  // the user's available resources, before the unsubscribed itself.
  if (type === "unsubscribed" && hasFrom(state.subscription))
    await sendUnavailable(ctx, user, contact);
  // Outbound processing only ever answers a pending request, never records one.
  if (state.pendingIn && !step.next.pendingIn)
    await ctx.stores.rosters.removePendingIn(user, contact);
  await pushChange(ctx, user, change);
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

/** What the contact's server decided for an inbound subscription stanza. */
type InboundPlan =
  /** §3.1.3 step 2 and §3.4: a request the owner pre-approved, approved at once. */
  | { kind: "pre-approved"; state: SubState; item: ItemUpdate }
  | { kind: "step"; state: SubState; step: InboundStep; item: ItemUpdate };

function planInbound(
  type: SubscriptionType,
  sender: string,
  item: RosterItem | undefined,
  pendingIn: boolean,
): InboundPlan {
  const state = stateOf(item, pendingIn);
  if (type === "subscribe" && item?.approved && !hasFrom(state.subscription)) {
    // Exactly as if the owner had sent `subscribed` (§3.1.5).
    const next: SubState = {
      subscription: subscriptionOf(hasTo(state.subscription), true),
      pendingOut: state.pendingOut,
      pendingIn: false,
    };
    return { kind: "pre-approved", state, item: itemFor(item, sender, state, next) };
  }
  const step = inbound(type, state);
  return { kind: "step", state, step, item: itemFor(item, sender, state, step.next) };
}

/** The contact's server: inbound processing of `stanza` from `sender` to `owner`. */
async function receiveSubscription(
  ctx: SessionContext,
  owner: string,
  sender: string,
  type: SubscriptionType,
  stanza: Element,
): Promise<void> {
  const pendingIn = await ctx.stores.rosters.hasPendingIn(owner, sender);
  // Inbound processing never creates an item (a request alone is only pending-in, §3.1.3),
  // so the owner's roster limit never refuses a stanza from someone else.
  const { plan, change } = await modifyRosterItemWith(ctx, owner, sender, (item) =>
    planInbound(type, sender, item, pendingIn),
  );

  if (plan.kind === "pre-approved") {
    if (plan.state.pendingIn) await ctx.stores.rosters.removePendingIn(owner, sender);
    await pushChange(ctx, owner, change);
    await routeSubscription(
      ctx,
      owner,
      sender,
      "subscribed",
      subscriptionElement(owner, sender, "subscribed"),
    );
    await sendCurrentPresence(ctx, owner, sender);
    return;
  }

  const { state, step } = plan;
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
  if (step.next.pendingIn && !state.pendingIn) {
    // §3.1.3: the request is kept for delivery at each later initial presence, up to the
    // bounds (in requests and in bytes, as it is stored verbatim); past them, it is dropped
    // like a request to a missing user (§8.5.1): no trace.
    const stored = await ctx.stores.rosters.addPendingIn(
      owner,
      sender,
      stanza.toString(),
      ctx.config.rosterMaxItems,
      ctx.config.pendingSubscriptionMaxBytes,
    );
    if (!stored) {
      ctx.log.warn(
        {
          jid: owner,
          contact: sender,
          max: ctx.config.rosterMaxItems,
          maxBytes: ctx.config.pendingSubscriptionMaxBytes,
        },
        "too many pending subscription requests; request dropped",
      );
      return;
    }
  }
  if (step.deliver) {
    // §3.1.3: a request goes to every available resource; §3.1.6, §3.2.3, §3.3.3: answers and
    // cancellations go to the interested resources.
    if (type === "subscribe") await deliverToAvailable(ctx, owner, stanza);
    else await deliverToInterested(ctx, owner, stanza);
  }
  if (state.pendingIn && !step.next.pendingIn)
    await ctx.stores.rosters.removePendingIn(owner, sender);
  await pushChange(ctx, owner, change);
  // §3.3.3: the sender no longer gets the owner's presence, so it is told the owner is gone.
  if (type === "unsubscribe" && hasFrom(state.subscription))
    await sendUnavailable(ctx, owner, sender);
}

/**
 * §2.5.2: after the user removed `removed` from the roster, every subscription between them
 * ends: `unsubscribed` if the contact was subscribed to the user or asking to be (the pending
 * request is deleted here), and `unsubscribe` if the user was subscribed to the contact or
 * asking to be.
 */
export async function endSubscriptionsOfRemoved(
  ctx: SessionContext,
  user: string,
  removed: RosterItem,
): Promise<void> {
  const contact = removed.jid;
  const pendingIn = await ctx.stores.rosters.removePendingIn(user, contact);
  if (hasFrom(removed.subscription) || pendingIn) {
    if (hasFrom(removed.subscription)) await sendUnavailable(ctx, user, contact);
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

function stateOf(item: RosterItem | undefined, pendingIn: boolean): SubState {
  return {
    subscription: item?.subscription ?? "none",
    pendingOut: item?.ask === "subscribe",
    pendingIn,
  };
}

/**
 * `owner`'s item for `other` once its side of the subscription goes from `before` to `next`:
 * "unchanged" when subscription and pending-out stay (pending-in is not part of the item, so a
 * request alone creates no item, §3.1.3); otherwise the item, created if absent.
 */
function itemFor(
  item: RosterItem | undefined,
  other: string,
  before: SubState,
  next: SubState,
): ItemUpdate {
  if (next.subscription === before.subscription && next.pendingOut === before.pendingOut)
    return "unchanged";
  const updated: RosterItem = {
    ...(item ?? { jid: other, groups: [] }),
    subscription: next.subscription,
  };
  if (next.pendingOut) updated.ask = "subscribe";
  else delete updated.ask;
  // A pre-approval is used up once the other party is subscribed (§3.4).
  if (hasFrom(next.subscription)) delete updated.approved;
  return updated;
}

/** Pushes the item to `owner`'s interested resources if modifyRosterItem changed it (§2.1.6). */
async function pushChange(ctx: SessionContext, owner: string, change: ItemChange): Promise<void> {
  if (change.version === undefined || change.after === undefined) return;
  await pushRosterItem(ctx, owner, change.after, change.version);
}
