// XEP-0199: XMPP Ping. Client → server pings are answered here; server → client pings of
// idle clients are sent by the session's client pinger.
import type { HandlerChain } from "../../core/handler-chain.js";
import { NS_PING } from "../../../shared/ns.js";

export function registerPing(chain: HandlerChain): void {
  // An empty result; to another account's bare JID the server answers for it (XEP-0199 §4.2).
  chain.get(NS_PING, "ping", async () => undefined, { forOtherAccounts: true });
}
