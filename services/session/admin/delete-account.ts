// Account deletion (`megaphone user del`), done completely, as mature servers do it (Prosody's
// user-deleted handlers, ejabberd's remove_user; XEP-0077 §3.2 for what a cancelled
// registration entails): the account goes first, so no new login succeeds; every live
// connection ends with a `not-authorized` stream error (RFC 6120 §4.9.3.12); every subscription
// ends as if the user had removed each contact (RFC 6121 §2.5.2: `unavailable`, `unsubscribed`,
// `unsubscribe` as the state requires, with their roster pushes); the user is then removed from
// the contacts' rosters with a roster push (subscription="remove", §2.5.2) so that a later
// account of the same name inherits nothing; and last the user's roster, roster version,
// pending requests and offline queue are deleted, so a re-created account starts empty with
// roster version "0".
//
// Contacts are found through the user's own roster and pending requests: a local user who put
// this one in a roster with no subscription, no request and no reverse item is not found, and
// keeps that item (there is no reverse index).
import { delay } from "../../shared/async/delay.js";
import { parseJid } from "../../shared/jid.js";
import type { OnlineResource } from "../../shared/stores/route/route-store.js";
import type { RosterItem } from "../../shared/stores/roster/roster-store.js";
import { StanzaError } from "../../shared/xmpp-errors.js";
import { endSubscriptionsOfRemoved } from "../features/presence/subscription-outbound.js";
import { modifyRosterItem } from "../features/roster/modify-item.js";
import { pushRosterItem } from "../features/roster/push.js";
import type { AdminContext } from "./admin-context.js";

/** How often the route store is read while the sessions end the account's connections. */
export const UNBIND_POLL_MS = 50;

export interface DeleteAccountResult {
  /** False when there was no account (leftovers of an earlier deletion are cleaned anyway). */
  existed: boolean;
  /** Live connections ended. */
  kicked: number;
  /** Connections whose session did not end them within config.accountDeleteWaitMs; unbound here. */
  unboundHere: number;
  /** Contacts whose subscriptions ended and whose rosters lost the user. */
  contacts: number;
}

export async function deleteAccount(ctx: AdminContext, user: string): Promise<DeleteAccountResult> {
  const existed = await ctx.stores.accounts.delete(user);
  const { kicked, left } = await endConnections(ctx, user, ctx.config.accountDeleteWaitMs);

  const roster = await ctx.stores.rosters.get(user);
  const contacts = new Map<string, RosterItem>();
  for (const item of roster.items) if (item.jid !== user) contacts.set(item.jid, item);
  for (const contact of (await ctx.stores.rosters.listPendingIn(user)).keys())
    if (!contacts.has(contact))
      contacts.set(contact, { jid: contact, subscription: "none", groups: [] });

  // While any connection the sessions did not end is still bound, contacts hear it leave.
  for (const item of contacts.values())
    await skippingMalformed(ctx, item.jid, () => endSubscriptionsOfRemoved(ctx, user, item));
  for (const r of left) await ctx.stores.routes.unbind(user, r.resource, r.connId);
  for (const contact of contacts.keys())
    await skippingMalformed(ctx, contact, () => removeFromRoster(ctx, contact, user));

  await ctx.stores.rosters.deleteUser(user);
  await ctx.stores.offline.deleteUser(user);
  await ctx.flush();
  ctx.log.info(
    { jid: user, existed, kicked, unboundHere: left.length, contacts: contacts.size },
    "account deleted",
  );
  return { existed, kicked, unboundHere: left.length, contacts: contacts.size };
}

/**
 * Kicks every connection bound for `user` (kick packets through its shard's inbox, so the
 * owning session ends it in order: unavailable presence, route and snapshot gone), and waits up
 * to `waitMs` for their routes to go. A connection that binds meanwhile is kicked too. Returns
 * how many were kicked and the bindings still there at the deadline.
 */
async function endConnections(
  ctx: AdminContext,
  user: string,
  waitMs: number,
): Promise<{ kicked: number; left: OnlineResource[] }> {
  const deadline = Date.now() + waitMs;
  const kicked = new Set<string>();
  for (;;) {
    const bound = await ctx.stores.routes.list(user);
    for (const r of bound) {
      if (kicked.has(r.connId)) continue;
      kicked.add(r.connId);
      await ctx.kick(r.connId, "not-authorized");
    }
    if (bound.length === 0 || Date.now() >= deadline) return { kicked: kicked.size, left: bound };
    await delay(UNBIND_POLL_MS);
  }
}

/** The user leaves `contact`'s roster (a local account's), with a push to its resources. */
async function removeFromRoster(ctx: AdminContext, contact: string, user: string): Promise<void> {
  const jid = parseJid(contact);
  if (jid.domain !== ctx.domain || jid.local === "") return;
  await ctx.stores.rosters.removePendingIn(contact, user);
  const change = await modifyRosterItem(ctx, contact, user, () => undefined);
  if (change.version !== undefined)
    await pushRosterItem(ctx, contact, { jid: user, subscription: "remove" }, change.version);
}

/** A roster item an older version stored under a JID that no longer parses is skipped, logged. */
async function skippingMalformed(
  ctx: AdminContext,
  contact: string,
  work: () => Promise<void>,
): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (!(err instanceof StanzaError) || err.condition !== "jid-malformed") throw err;
    ctx.log.warn({ contact, err }, "account deletion skipped a contact with a malformed JID");
  }
}
