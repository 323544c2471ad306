// RFC 6121 §3 and Appendix A: what outbound (subscription-outbound.ts, A.2) and inbound
// (subscription-inbound.ts, A.3) subscription processing share: one side's state read from its
// roster item and pending-in record, the item that state becomes, the roster push of a changed
// item (§2.1.6), and a stamped subscription stanza the server sends on a user's behalf.
import type { Element } from "ltx";
import type { RosterItem } from "../../../shared/stores/roster/roster-store.js";
import type { SessionContext } from "../../core/context.js";
import type { ItemChange, ItemUpdate } from "../roster/modify-item.js";
import { pushRosterItem } from "../roster/push.js";
import { presenceElement } from "./delivery.js";
import { hasFrom, type SubState, type SubscriptionType } from "./subscription-state.js";

/** A subscription stanza from `user` to `contact` (`stanza` stamped with both bare JIDs). */
export function subscriptionElement(
  user: string,
  contact: string,
  type: SubscriptionType,
): Element {
  return presenceElement({ type, from: user, to: contact });
}

export function stateOf(item: RosterItem | undefined, pendingIn: boolean): SubState {
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
export function itemFor(
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
export async function pushChange(
  ctx: SessionContext,
  owner: string,
  change: ItemChange,
): Promise<void> {
  if (change.version === undefined || change.after === undefined) return;
  await pushRosterItem(ctx, owner, change.after, change.version);
}
