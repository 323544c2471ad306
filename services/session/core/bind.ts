// RFC 6120 §7: resource binding. A missing resource gets a server-generated one; a resource
// already bound to another connection is taken over and the old connection gets a
// `conflict` stream error (§7.7.2.2, "override the existing session"). An account that
// already has config.maxResourcesPerUser resources bound gets `resource-constraint` for a new
// one (§7.6.2.1); the stream stays open, so the client may retry or take over a resource.
// A takeover runs the chain's onTakeover hooks (presence: see broadcast.ts) before the bind is
// answered, so their effects are ordered before anything the new client sends.
import { createHash } from "node:crypto";
import { Element } from "ltx";
import { parseJid } from "../../shared/jid.js";
import { NS_BIND } from "../../shared/ns.js";
import { StanzaError, errorReply } from "../../shared/xmpp-errors.js";
import type { ConnState } from "./connection.js";
import type { SessionContext } from "./context.js";
import type { HandlerChain } from "./handler-chain.js";

/** Hex digits of a generated resource: 48 bits, unique enough among one user's resources. */
export const GENERATED_RESOURCE_HEX = 12;

/**
 * Binds `requested` (or, if "", a resource derived from the connection id) to the
 * authenticated connection: stores the route, takes the resource over from another
 * connection if it held it (running the chain's onTakeover hooks and kicking it), and sets
 * conn.resource. The stage is left to the caller, which answers the client next: RFC 6120
 * binding (handleBind) and Bind 2 (bind2.ts) both bind through here. Throws StanzaError
 * (bad-request for a resource that is no valid resourcepart, resource-constraint).
 */
export async function bindResource(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  requested: string,
): Promise<string> {
  // Derived from the connection id, so a redelivered bind picks the same resource and
  // leaves no second binding behind.
  let resource =
    requested === ""
      ? `mp-${createHash("sha256").update(conn.connId).digest("hex").slice(0, GENERATED_RESOURCE_HEX)}`
      : requested;
  try {
    resource = parseJid(`${conn.bareJid}/${resource}`).resource;
  } catch {
    throw new StanzaError("bad-request", "modify", "that resource is not allowed");
  }
  const bound = await ctx.stores.routes.bind(
    conn.bareJid as string,
    resource,
    conn.connId,
    ctx.config.maxResourcesPerUser,
  );
  if (!bound.ok)
    throw new StanzaError("resource-constraint", "wait", "too many resources are bound");
  conn.resource = resource;
  const previous = bound.previous;
  if (previous && previous.connId !== conn.connId) {
    for (const hook of chain.onTakeover) await hook(ctx, conn, previous);
    await ctx.kick(previous.connId, "conflict");
  }
  return resource;
}

export async function handleBind(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  iq: Element,
): Promise<void> {
  try {
    if (iq.attrs.type !== "set" || !iq.attrs.id)
      throw new StanzaError("bad-request", "modify", "bind is an iq set with an id");
    const requested = iq.getChild("bind", NS_BIND)?.getChildText("resource")?.trim() ?? "";
    const resource = await bindResource(ctx, chain, conn, requested);
    const reply = new Element("iq", { type: "result", id: iq.attrs.id });
    reply.c("bind", { xmlns: NS_BIND }).c("jid").t(`${conn.bareJid}/${resource}`);
    // Bound only now, with its answer: until then, a stanza another connection delivers to it
    // goes through its inbox (reroute.ts) and cannot reach the client before the bind result.
    conn.stage = "bound";
    ctx.send(conn, reply);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    ctx.send(conn, errorReply(iq, err, ctx.domain));
  }
}
