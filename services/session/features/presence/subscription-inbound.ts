// RFC 6121 Appendix A.3 (inbound subscription stanzas): the contact's server processing a
// subscription stanza the user's server routed to it — §3.1.3 (subscribe, with pre-approval
// §3.4), §3.1.6 (subscribed), §3.2.3 (unsubscribed) and §3.3.3 (unsubscribe) — with the state
// changes of subscription-state.ts `inbound`. Only one domain is local and both parties are
// its users, so this runs right after outbound processing, in the same handler, against the
// shared stores: no server-to-server hop is involved.
//
// The owner's roster item changes through modifyRosterItem (a compare-and-set retried on
// conflict), so the session processes of the two parties cannot undo each other's changes.
// The decision (deliver? new state?) is made inside that step from the item it commits
// against; stanzas are sent only after the commit. Pending-in records (§3.1.3) are kept apart
// from items, bounded by config.rosterMaxItems and config.pendingSubscriptionMaxBytes per user;
// a request past either is dropped.
import type { Element } from "ltx";
import { parseJid } from "../../../shared/jid.js";
import type { RosterItem } from "../../../shared/stores/roster/roster-store.js";
import type { SessionContext } from "../../core/context.js";
import { modifyRosterItemWith, type ItemUpdate } from "../roster/modify-item.js";
import {
  deliverToAvailable,
  deliverToInterested,
  isLocalAccount,
  sendCurrentPresence,
  sendUnavailable,
} from "./delivery.js";
import { itemFor, pushChange, stateOf, subscriptionElement } from "./subscription-common.js";
import {
  hasFrom,
  hasTo,
  inbound,
  subscriptionOf,
  type InboundStep,
  type SubState,
  type SubscriptionType,
} from "./subscription-state.js";

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
