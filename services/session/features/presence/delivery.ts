// RFC 6121 §8.5.2.1.1 and §8.5.3.1 applied to presence: a presence stanza for a local bare JID
// goes to each of its available resources (those that sent initial presence); one for a full
// JID goes to that resource. Every resource of every user is in the shared route store, so the
// server can act for any local user here: send "their" presence, or deliver to them.
import { Element, parse } from "ltx";
import type { Jid } from "../../../shared/jid.js";
import { NS_CLIENT } from "../../../shared/ns.js";
import type { OnlineResource, ResourcePresence } from "../../../shared/stores/route/route-store.js";
import type { SessionContext } from "../../core/context.js";

/** A server-generated presence stanza. */
export function presenceElement(attrs: { type?: string; from?: string; to?: string }): Element {
  return new Element("presence", { xmlns: NS_CLIENT, ...attrs });
}

/** A copy of `stanza` (an element or stored XML) with some addresses replaced. */
export function readdressed(
  stanza: Element | string,
  attrs: { from?: string; to?: string; type?: string },
): Element {
  const copy = parse(typeof stanza === "string" ? stanza : stanza.toString());
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined) delete copy.attrs[name];
    else copy.attrs[name] = value;
  }
  return copy;
}

/** The available resources of `bare`, for delivery: routing data only, no presence read. */
export async function availableResources(
  ctx: SessionContext,
  bare: string,
): Promise<OnlineResource[]> {
  return (await ctx.stores.routes.list(bare)).filter((r) => r.available);
}

/** The available resources of `bare` with their last presence: only where it is sent on. */
export function availablePresences(ctx: SessionContext, bare: string): Promise<ResourcePresence[]> {
  return ctx.stores.routes.presences(bare);
}

/** Delivers `stanza` as it is to each available resource of `bare`, except `exceptConnId`. */
export async function deliverToAvailable(
  ctx: SessionContext,
  bare: string,
  stanza: Element,
  exceptConnId?: string,
): Promise<void> {
  const resources = await availableResources(ctx, bare);
  await Promise.all(
    resources.filter((r) => r.connId !== exceptConnId).map((r) => ctx.deliver(r.connId, stanza)),
  );
}

/** Delivers `stanza` to each interested resource of `bare` (RFC 6121 §3.1.6, §3.2.3, §3.3.3). */
export async function deliverToInterested(
  ctx: SessionContext,
  bare: string,
  stanza: Element,
): Promise<void> {
  const resources = (await ctx.stores.routes.list(bare)).filter((r) => r.interested);
  await Promise.all(resources.map((r) => ctx.deliver(r.connId, stanza)));
}

/**
 * Sends the current presence of each available resource of `owner` to `recipient` (a bare JID),
 * as the owner's server does after approving a subscription (RFC 6121 §3.1.5).
 */
export async function sendCurrentPresence(
  ctx: SessionContext,
  owner: string,
  recipient: string,
): Promise<void> {
  for (const r of await availablePresences(ctx, owner)) {
    await deliverToAvailable(ctx, recipient, readdressed(r.presence, { to: recipient }));
  }
}

/**
 * Sends unavailable presence from each available resource of `owner` to `recipient` (a bare
 * JID), as the owner's server does when a subscription to the owner ends (RFC 6121 §3.2.2,
 * §3.3.3).
 */
export async function sendUnavailable(
  ctx: SessionContext,
  owner: string,
  recipient: string,
): Promise<void> {
  for (const r of await availableResources(ctx, owner)) {
    const unavailable = presenceElement({
      type: "unavailable",
      from: `${owner}/${r.resource}`,
      to: recipient,
    });
    await deliverToAvailable(ctx, recipient, unavailable);
  }
}

/** True if `jid` names an account of this server (RFC 6121 §8.5.1 "no such user" otherwise). */
export async function isLocalAccount(ctx: SessionContext, jid: Jid): Promise<boolean> {
  if (jid.domain !== ctx.domain || jid.local === "") return false;
  return (await ctx.stores.accounts.get(jid.bareString())) !== undefined;
}
