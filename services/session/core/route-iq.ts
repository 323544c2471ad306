// RFC 6120 §8.2.3 and RFC 6121 §8.5: where an iq from a bound client goes. No `to`, the
// server, or a local bare JID → answered by the server (the handler chain); a full JID →
// delivered to that resource if it is online.
import type { Element } from "ltx";
import { parseJid } from "../../shared/jid.js";
import { StanzaError } from "../../shared/xmpp-errors.js";
import type { ConnState } from "./connection.js";
import type { SessionContext } from "./context.js";
import type { HandlerChain } from "./handler-chain.js";
import { isIqResponse } from "./stanza-kind.js";

export async function routeIq(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  iq: Element,
): Promise<void> {
  const { to, id } = iq.attrs;
  const isResponse = isIqResponse(iq);
  if (isResponse && conn.ping && id === conn.ping.id && (to === undefined || to === ctx.domain)) {
    conn.ping = undefined; // the answer to our XEP-0199 ping
    return;
  }
  if (to === undefined || to === ctx.domain || to === conn.bareJid)
    return chain.handleIq(ctx, conn, iq);

  const target = parseJid(to);
  if (target.domain !== ctx.domain) {
    if (isResponse) return;
    throw new StanzaError("remote-server-not-found", "cancel", "no server-to-server here");
  }
  if (!target.resource) {
    // RFC 6121 §8.5.1: an iq to an account that does not exist gets service-unavailable.
    if (isResponse) return;
    if (!(await ctx.stores.accounts.get(target.bareString())))
      throw new StanzaError("service-unavailable");
    return chain.handleIq(ctx, conn, iq, true);
  }

  const resource = (await ctx.stores.routes.list(target.bareString())).find(
    (r) => r.resource === target.resource,
  );
  if (!resource) {
    if (isResponse) return;
    throw new StanzaError("service-unavailable");
  }
  await ctx.deliver(resource.connId, iq);
}
