// XEP-0092: Software Version of the server.
import { Element } from "ltx";
import { NS_VERSION } from "../../../shared/ns.js";
import { MEGAPHONE_VERSION } from "../../../shared/version.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { HandlerChain } from "../../core/handler-chain.js";

export const SERVER_NAME = "Megaphone";
export const SERVER_VERSION = MEGAPHONE_VERSION;

export function registerVersion(chain: HandlerChain): void {
  chain.get(NS_VERSION, "query", async (ctx, _conn, iq) => {
    if (iq.attrs.to !== undefined && iq.attrs.to !== ctx.domain)
      throw new StanzaError("service-unavailable");
    const query = new Element("query", { xmlns: NS_VERSION });
    query.c("name").t(SERVER_NAME);
    query.c("version").t(SERVER_VERSION);
    return query;
  });
}
