// RFC 6120 §8.2.3 and RFC 6121 §8.5: where an iq from a bound client goes. No `to`, the
// server, or a local bare JID → answered by the server (the handler chain); a full JID →
// delivered to that resource if it is online. Every iq is checked against §8.2.3 first, so a
// malformed one is never relayed to another client.
import type { Element } from "ltx";
import { parseJid } from "../../shared/jid.js";
import { StanzaError } from "../../shared/xmpp-errors.js";
import type { ConnState } from "./connection.js";
import type { SessionContext } from "./context.js";
import type { HandlerChain } from "./handler-chain.js";
import { isIqResponse } from "./stanza-kind.js";

/**
 * RFC 6120 §8.2.3: an iq has an id and a type among get/set/result/error; a get or set holds
 * exactly one payload, a result at most one. A malformed request (unknown type included) gets
 * bad-request, wherever it is addressed, before anything is relayed; a malformed response is
 * dropped, since no iq response is ever answered (rule 4). Returns false for a dropped one.
 */
function checkIq(iq: Element): boolean {
  const { id, type } = iq.attrs;
  const children = iq.getChildElements().length;
  if (type === "result" || type === "error") return !!id && (type === "error" || children <= 1);
  if (type !== "get" && type !== "set")
    throw new StanzaError("bad-request", "modify", "iq type must be get, set, result or error");
  if (!id) throw new StanzaError("bad-request", "modify", "an iq needs an id");
  if (children !== 1)
    throw new StanzaError("bad-request", "modify", "an iq get/set has exactly one payload");
  return true;
}

export async function routeIq(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  iq: Element,
): Promise<void> {
  if (!checkIq(iq)) return;
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
