// RFC 6121 §2 (roster management) with roster versioning (RFC 6121 §2.6, XEP-0237): roster get
// (§2.1.3), which makes the resource an interested one (§2.1.6); roster set to add or update an
// item (§2.3, §2.4) or to remove one (§2.5). Every change is pushed to all interested
// resources (push.ts) before the result goes to the requester. Items change only through
// modifyRosterItem (modify-item.ts), a compare-and-set that no concurrent change can undo.
import type { Element } from "ltx";
import { parseJid } from "../../../shared/jid.js";
import { NS_ROSTER } from "../../../shared/ns.js";
import type { RosterItem } from "../../../shared/stores/roster/roster-store.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import type { HandlerChain } from "../../core/handler-chain.js";
import { endSubscriptionsOfRemoved } from "../presence/subscription-outbound.js";
import { modifyRosterItem } from "./modify-item.js";
import { pushRosterItem } from "./push.js";
import { readRosterSet, rosterQuery } from "./roster-xml.js";

export { pushRosterItem } from "./push.js";

export function registerRoster(chain: HandlerChain): void {
  chain.get(NS_ROSTER, "query", rosterGet);
  chain.set(NS_ROSTER, "query", rosterSet);
}

/**
 * §2.1.3 and §2.6.3: the whole roster with its version, or an empty result when the client's
 * `ver` is current (the client then learns of later changes through pushes).
 */
async function rosterGet(
  ctx: SessionContext,
  conn: ConnState,
  _iq: Element,
  query: Element,
): Promise<Element | void> {
  const user = conn.bareJid as string;
  // Interested before the roster is read, so no change made in between goes unpushed.
  conn.interested = true;
  await ctx.stores.routes.update(user, conn.resource as string, conn.connId, { interested: true });
  const roster = await ctx.stores.rosters.get(user);
  if (query.attrs.ver !== undefined && query.attrs.ver === roster.version) return;
  return rosterQuery(roster.version, roster.items);
}

/**
 * Why `jid` (prepared) cannot name an item of `user`'s roster, as Prosody's mod_roster decides:
 * an item names a contact by bare JID (RFC 6121 §2.1), so a full JID gets bad-request, and the
 * user is no contact of their own (their resources see each other's presence anyway, §4.2.2),
 * so the own bare JID gets not-allowed. A bare domain is a valid contact (a gateway or a
 * service, XEP-0100) and is accepted, as Prosody and ejabberd accept it.
 */
function itemJidError(user: string, jid: string): StanzaError | undefined {
  const parsed = parseJid(jid);
  if (parsed.resource !== "")
    return new StanzaError("bad-request", "modify", "a roster item's jid is a bare JID");
  if (parsed.bareString() === user)
    return new StanzaError("not-allowed", "cancel", "your own JID cannot be a roster item");
  return undefined;
}

/**
 * §2.1.5: one item to add, update or remove; checked as §2.3.3 says (roster-xml.ts) and as
 * itemJidError says. Adding an item to a roster that holds config.rosterMaxItems already is
 * refused (modify-item.ts).
 */
async function rosterSet(
  ctx: SessionContext,
  conn: ConnState,
  _iq: Element,
  query: Element,
): Promise<void> {
  const user = conn.bareJid as string;
  const request = readRosterSet(query, {
    nameMaxBytes: ctx.config.rosterNameMaxBytes,
    groupMaxBytes: ctx.config.rosterGroupMaxBytes,
  });

  const jidError = itemJidError(user, request.jid);
  // Items stored before these checks existed (a full JID, the user's own) can still be removed.
  if (
    jidError &&
    (request.kind === "update" || !(await ctx.stores.rosters.getItem(user, request.jid)))
  )
    throw jidError;

  if (request.kind === "remove") {
    const change = await modifyRosterItem(ctx, user, request.jid, (current) => {
      // §2.5.3: removing an item that is not there.
      if (!current) throw new StanzaError("item-not-found", "cancel");
      return undefined;
    });
    const removed = change.before as RosterItem;
    await pushRosterItem(
      ctx,
      user,
      { jid: request.jid, subscription: "remove" },
      change.version as string,
    );
    // §2.5.2: the subscriptions in both directions end with the item.
    await endSubscriptionsOfRemoved(ctx, user, removed);
    return;
  }

  // §2.3.2, §2.4.2: name and groups come from the client; subscription state stays the
  // server's (a new item starts at "none").
  const change = await modifyRosterItem(ctx, user, request.jid, (current) => {
    const item: RosterItem = {
      ...(current ?? { jid: request.jid, subscription: "none" }),
      groups: request.groups,
    };
    if (request.name === undefined) delete item.name;
    else item.name = request.name;
    return item;
  });
  await pushRosterItem(ctx, user, change.after as RosterItem, change.version as string);
}
