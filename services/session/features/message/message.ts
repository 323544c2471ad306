// RFC 6121 §8.5: server rules for message stanzas addressed to local JIDs, with offline
// storage (XEP-0160) for chat/normal messages with a body when no resource is available,
// bounded per user in messages and bytes and per sender in messages (optionally only from
// roster contacts), delivered with an XEP-0203 delay element at the next initial presence,
// or when an available resource raises its priority from negative.
//
// A refused offline message gets service-unavailable (cancel) whatever the reason: RFC 6121
// §8.5.2.2.1 names it for a message the server will not store, and it is what a sender gets
// for an account that does not exist, so it tells a stranger nothing new. resource-constraint
// (RFC 6120 §8.3.3.18, type wait) would invite retries that cannot succeed while the queue is
// unread.
import { Element, parse } from "ltx";
import { parseJid, type Jid } from "../../../shared/jid.js";
import { NS_CLIENT, NS_DELAY } from "../../../shared/ns.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { DirectTarget, SessionContext } from "../../core/context.js";
import type { OnlineResource } from "../../../shared/stores/route/route-store.js";
import type { HandlerChain } from "../../core/handler-chain.js";

export function registerMessage(chain: HandlerChain): void {
  chain.message(handleMessage);
  chain.onInitialPresence.push(deliverOffline);
  chain.onPriorityRaised.push(deliverOffline);
  // After deliverOffline: stored messages reach the client before any stanza written directly.
  chain.onInitialPresence.push(async (ctx, conn) => ctx.allowDirect?.(conn));
}

/** The binding a message goes to, for two-hop delivery (SessionContext.deliver). */
function targetOf(bareJid: string, binding: OnlineResource): DirectTarget {
  return { bareJid, resource: binding.resource, edge: binding.edge };
}

async function handleMessage(
  ctx: SessionContext,
  conn: ConnState,
  message: Element,
): Promise<void> {
  // RFC 6120 §10.3.1: no `to` means the sender's own bare JID.
  const target = parseJid(message.attrs.to ?? (conn.bareJid as string));
  if (target.domain !== ctx.domain)
    throw new StanzaError("remote-server-not-found", "cancel", "no server-to-server here");
  if (!target.local) {
    // Addressed to the server itself, which has nothing to say to a message.
    if (isDroppable(message)) return;
    throw new StanzaError("service-unavailable");
  }
  await routeMessage(ctx, target, message);
}

const MESSAGE_TYPES = new Set(["chat", "error", "groupchat", "headline", "normal"]);

/** RFC 6121 §5.2.2: a missing or unknown type is treated as "normal". */
function messageType(message: Element): string {
  const type = message.attrs.type;
  return type !== undefined && MESSAGE_TYPES.has(type) ? type : "normal";
}

/** Error and headline messages are never answered with an error (RFC 6121 §8.5.2, §8.5.3). */
function isDroppable(message: Element): boolean {
  const type = messageType(message);
  return type === "error" || type === "headline";
}

/** Routes a stamped message to a local JID; throws the StanzaError the sender should get. */
export async function routeMessage(
  ctx: SessionContext,
  target: Jid,
  message: Element,
): Promise<void> {
  const type = messageType(message);
  const bare = target.bareString();
  const resources = await ctx.stores.routes.list(bare);
  if (target.resource) {
    const exact = resources.find((r) => r.resource === target.resource);
    if (exact) return ctx.deliver(exact.connId, message, targetOf(bare, exact));
    // §8.5.3.2.1: an offline full JID; chat and normal are treated as sent to the bare JID.
    if (type === "groupchat") throw new StanzaError("service-unavailable");
    if (type !== "chat" && type !== "normal") return;
  }
  if (type === "error") return; // §8.5.2.1.1: silently ignored
  if (type === "groupchat") throw new StanzaError("service-unavailable");
  const available = resources.filter((r) => r.available && r.priority >= 0);
  if (available.length > 0) {
    // headline: every non-negative resource; chat and normal: those of the highest priority.
    const top = Math.max(...available.map((r) => r.priority));
    const recipients =
      type === "headline" ? available : available.filter((r) => r.priority === top);
    await Promise.all(recipients.map((r) => ctx.deliver(r.connId, message, targetOf(bare, r))));
    return;
  }
  if (type === "headline") return;
  if (!(await ctx.stores.accounts.get(bare))) throw new StanzaError("service-unavailable");
  if (!hasBody(message)) return;
  await storeOffline(ctx, bare, message);
}

/**
 * Whether a message is worth storing offline. XEP-0160 §3: chat messages SHOULD be stored
 * "with the exception of messages that contain only Chat State Notifications (XEP-0085)
 * content", which SHOULD NOT be (see also XEP-0085 §5.8, Server Handling of Notifications).
 * We apply the same rule to every chat and normal message without a <body/> (receipts,
 * markers, chat states): they only make sense in real time, and storing them would let any
 * sender fill a queue with content its owner never reads. Such a message is dropped silently
 * (like a headline, §8.5.2.2.1): there is nothing the sender could do about a bounce.
 */
function hasBody(message: Element): boolean {
  return message.getChildren("body").some((body) => {
    const ns = body.getNS();
    return ns === undefined || ns === NS_CLIENT;
  });
}

async function storeOffline(ctx: SessionContext, bare: string, message: Element): Promise<void> {
  // The sender as stamped by its server (§8.5: never what a client claimed); messages to
  // oneself count against no sender's bound.
  const from = message.attrs.from ? parseJid(message.attrs.from).bareString() : "";
  const sender = from === bare ? "" : from;
  if (sender !== "" && ctx.config.offlineFromContactsOnly) {
    const item = await ctx.stores.rosters.getItem(bare, sender);
    if (!item || item.subscription === "none")
      throw new StanzaError(
        "service-unavailable",
        "cancel",
        "offline messages are accepted only from contacts",
      );
  }
  const stamped = parse(message.toString());
  stamped.c("delay", {
    xmlns: NS_DELAY,
    from: ctx.domain,
    stamp: new Date(ctx.now()).toISOString(),
  });
  const stored = await ctx.stores.offline.pushFrom(
    bare,
    sender,
    stamped.toString(),
    {
      maxMessages: ctx.config.offlineMaxMessages,
      maxBytes: ctx.config.offlineMaxBytes,
      maxPerSender: ctx.config.offlineMaxMessagesPerSender,
    },
    ctx.takeOrigin(),
  );
  if (stored === "stored") {
    // One more read, on the offline path only, for the queue-length histogram; its failure
    // must not fail (and repeat) the delivery it describes.
    const length = await ctx.stores.offline.count(bare).catch(() => undefined);
    ctx.observe.offlineStored(length);
    return;
  }
  if (stored === "full")
    throw new StanzaError("service-unavailable", "cancel", "offline storage is full");
  if (stored === "sender-full")
    throw new StanzaError(
      "service-unavailable",
      "cancel",
      "too many of your messages are already waiting for this user",
    );
}

/**
 * XEP-0160 §2: stored messages go to the first non-negative available presence: an initial
 * one, or an update that raises a negative priority (RFC 6121 §8.5.2.1.1).
 */
async function deliverOffline(ctx: SessionContext, conn: ConnState): Promise<void> {
  if (conn.priority < 0) return;
  const user = conn.bareJid as string;
  const stanzas = await ctx.stores.offline.peek(user);
  if (stanzas.length === 0) return;
  for (const xml of stanzas) ctx.send(conn, xml);
  // Removed only once the deliveries are stored: a failure in between delivers them again.
  ctx.afterEffects(() => ctx.stores.offline.removeDelivered(user, stanzas));
}
