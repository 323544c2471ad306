// The one way features change a roster item (RFC 6121 §2, §3): read it, compute the new item
// from it, and store that with the store's compare-and-set (RosterStore.replaceItem), reading
// and computing again if another session process changed the item in between. Session
// processes handle the two parties of a subscription concurrently (alice's stanzas on her
// shard, bob's on his), so a plain read-then-write could lose one side's change.
import type { RosterItem } from "../../../shared/stores/roster/roster-store.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { SessionContext } from "../../core/context.js";

/**
 * Attempts before giving up. Each retry means another write to the same item landed between
 * a read and a write, which takes two or more stanzas about the same pair of users racing.
 */
export const MODIFY_ROSTER_ITEM_ATTEMPTS = 8;

/** What `compute` returns: the new item, undefined to remove it, or "unchanged". */
export type ItemUpdate = RosterItem | undefined | "unchanged";

export interface ItemChange {
  /** The item `compute` saw on the attempt that counted (undefined: there was none). */
  before: RosterItem | undefined;
  /** The item stored now (undefined: none). */
  after: RosterItem | undefined;
  /** The new roster version if something was written; undefined if nothing changed. */
  version: string | undefined;
}

/**
 * Applies `compute` to `user`'s item for `contact` atomically. `compute` must be a pure
 * function of the item it is given: it may run several times, and only the last run counts.
 * It may throw (a StanzaError goes back to the client as usual). Creating an item in a roster
 * that already holds `rosterMaxItems` throws policy-violation (see rosterFullError).
 */
export async function modifyRosterItem(
  ctx: SessionContext,
  user: string,
  contact: string,
  compute: (current: RosterItem | undefined) => ItemUpdate,
): Promise<ItemChange> {
  for (let attempt = 1; attempt <= MODIFY_ROSTER_ITEM_ATTEMPTS; attempt++) {
    const current = await ctx.stores.rosters.getItem(user, contact);
    const next = compute(current);
    if (next === "unchanged" || (next === undefined && current === undefined))
      return { before: current, after: current, version: undefined };
    const result = await ctx.stores.rosters.replaceItem(
      user,
      contact,
      current,
      next,
      ctx.config.rosterMaxItems,
    );
    if (result.ok) return { before: current, after: next, version: result.version };
    if (result.reason === "full") {
      ctx.log.warn({ jid: user, contact, max: ctx.config.rosterMaxItems }, "roster full");
      throw rosterFullError(ctx.config.rosterMaxItems);
    }
  }
  ctx.log.error(
    { jid: user, contact, attempts: MODIFY_ROSTER_ITEM_ATTEMPTS },
    "roster item kept changing under concurrent updates; giving up",
  );
  throw new StanzaError("internal-server-error", "wait", "the roster item is busy; try again");
}

/**
 * modifyRosterItem for callers that decide more than the item (route? deliver?): `decide`
 * returns a plan holding the item update, and the plan of the attempt that was committed comes
 * back with the change, so whatever the caller does next matches what was stored.
 */
export async function modifyRosterItemWith<P extends { item: ItemUpdate }>(
  ctx: SessionContext,
  user: string,
  contact: string,
  decide: (current: RosterItem | undefined) => P,
): Promise<{ plan: P; change: ItemChange }> {
  const last: { plan?: P } = {};
  const change = await modifyRosterItem(ctx, user, contact, (current) => {
    last.plan = decide(current);
    return last.plan.item;
  });
  if (last.plan === undefined) throw new Error("modifyRosterItem committed without deciding");
  return { plan: last.plan, change };
}

/**
 * A roster set or subscription request that would add an item past the server's limit. RFC
 * 6121 §2.3.3 lists the roster-set errors (forbidden, bad-request, not-acceptable for the
 * name and group limits) but names no condition for a limit on the number of items, so this
 * uses the RFC 6120 condition for a local service policy: §8.3.3.12 policy-violation ("the
 * entity has violated some local service policy"), not resource-constraint (§8.3.3.18, a
 * server that is busy or short of resources, which the client should retry later). Type
 * "cancel": sending the same request again cannot succeed until the user removes an item.
 */
export function rosterFullError(maxItems: number): StanzaError {
  return new StanzaError("policy-violation", "cancel", `the roster is full (${maxItems} items)`);
}
