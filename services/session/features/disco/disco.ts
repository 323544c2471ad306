// XEP-0030: Service Discovery for the server and for local accounts (XEP-0030 §3.1 and
// the account identities of the XMPP registry: category "account", type "registered").
import { Element } from "ltx";
import {
  NS_DELAY,
  NS_MSGOFFLINE,
  NS_ROSTER,
  NS_DISCO_INFO,
  NS_DISCO_ITEMS,
  NS_PING,
  NS_ROSTER_VER,
  NS_VERSION,
} from "../../../shared/ns.js";
import { parseJid } from "../../../shared/jid.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import type { HandlerChain } from "../../core/handler-chain.js";
import { SERVER_NAME } from "../version/version.js";

const SERVER_FEATURES = [
  NS_DISCO_INFO,
  NS_DISCO_ITEMS,
  NS_PING,
  NS_VERSION,
  NS_ROSTER_VER,
  NS_MSGOFFLINE,
  NS_ROSTER,
  NS_DELAY,
];

/** Which entity an iq asks about: the server, or an existing local account. */
async function target(
  ctx: SessionContext,
  conn: ConnState,
  iq: Element,
): Promise<"server" | "account"> {
  const to = iq.attrs.to;
  if (to === ctx.domain) return "server";
  // No `to` is the user's own account (RFC 6120 §10.3.3).
  const bare = to === undefined ? (conn.bareJid as string) : parseJid(to).bareString();
  if (bare !== conn.bareJid && !(await ctx.stores.accounts.get(bare)))
    throw new StanzaError("service-unavailable");
  return "account";
}

export function registerDisco(chain: HandlerChain): void {
  chain.get(
    NS_DISCO_INFO,
    "query",
    async (ctx, conn, iq, query) => {
      if (query.attrs.node) throw new StanzaError("item-not-found");
      const result = new Element("query", { xmlns: NS_DISCO_INFO });
      if ((await target(ctx, conn, iq)) === "server") {
        result.c("identity", { category: "server", type: "im", name: SERVER_NAME });
        for (const feature of SERVER_FEATURES) result.c("feature", { var: feature });
      } else {
        result.c("identity", { category: "account", type: "registered" });
        result.c("feature", { var: NS_DISCO_INFO });
      }
      return result;
    },
    { forOtherAccounts: true },
  );
  chain.get(
    NS_DISCO_ITEMS,
    "query",
    async (ctx, conn, iq, query) => {
      if (query.attrs.node) throw new StanzaError("item-not-found");
      await target(ctx, conn, iq);
      // No services or published items yet: an empty, truthful list.
      return new Element("query", { xmlns: NS_DISCO_ITEMS });
    },
    { forOtherAccounts: true },
  );
}
