// RFC 6121 Appendix A.2 (outbound subscription stanzas): the user's server processing the
// user's own subscribe, subscribed, unsubscribe and unsubscribed — §3.1.2, §3.1.5 (with
// pre-approval §3.4), §3.2.2 and §3.3.2 — with the state changes of subscription-state.ts
// `outbound`, then routing the stanza to the contact's server (subscription-inbound.ts). A
// subscription stanza is stamped with the bare JIDs of both parties (§3). Also §2.5.2: removing
// a contact from the roster ends the subscriptions between them.
//
// The user's roster item changes through modifyRosterItem (a compare-and-set retried on
// conflict), so the session processes of the two parties cannot undo each other's changes.
// The decision (route? new state?) is made inside that step from the item it commits against;
// stanzas are sent only after the commit.
import type { Element } from "ltx";
import { parseJid } from "../../../shared/jid.js";
import type { RosterItem } from "../../../shared/stores/roster/roster-store.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import { modifyRosterItemWith, type ItemUpdate } from "../roster/modify-item.js";
import { readdressed, sendCurrentPresence, sendUnavailable } from "./delivery.js";
import { itemFor, pushChange, stateOf, subscriptionElement } from "./subscription-common.js";
import { routeSubscription } from "./subscription-inbound.js";
import {
  hasFrom,
  hasTo,
  outbound,
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
