// RFC 3921 §3 legacy session establishment, kept as a no-op for old clients (RFC 6121
// Appendix E); advertised as <optional/> in the stream features.
import { NS_SESSION } from "../../../shared/ns.js";
import type { HandlerChain } from "../../core/handler-chain.js";

export function registerSessionIq(chain: HandlerChain): void {
  chain.set(NS_SESSION, "session", async () => undefined);
}
