// RFC 6121 §3 and §4: presence stanzas from bound clients, by kind — subscription management
// (subscription-outbound.ts, then subscription-inbound.ts for the contact), probes (probe.ts),
// errors and directed presence (directed.ts), and broadcast presence, initial, updated or
// unavailable (broadcast.ts). On disconnect, unavailable presence is broadcast on the client's
// behalf (§4.5.2).
import type { Element } from "ltx";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import type { ConnState } from "../../core/connection.js";
import type { SessionContext } from "../../core/context.js";
import type { HandlerChain } from "../../core/handler-chain.js";
import {
  broadcastAvailable,
  broadcastUnavailable,
  unavailableOnDisconnect,
  unavailableOnTakeover,
} from "./broadcast.js";
import { routePresenceError, sendDirected } from "./directed.js";
import { answerClientProbe } from "./probe.js";
import { handleSubscription } from "./subscription-outbound.js";
import { SUBSCRIPTION_TYPES, type SubscriptionType } from "./subscription-state.js";

/** RFC 6121 §4.7.1: the values of the presence `type` attribute. */
const PRESENCE_TYPES = new Set(["unavailable", "probe", "error", ...SUBSCRIPTION_TYPES]);

export function registerPresence(chain: HandlerChain): void {
  chain.presence((ctx, conn, presence) => handlePresence(ctx, chain, conn, presence));
  chain.onDisconnect.push(unavailableOnDisconnect);
  chain.onTakeover.push(unavailableOnTakeover);
}

async function handlePresence(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  presence: Element,
): Promise<void> {
  const type = presence.attrs.type;
  if (type !== undefined && !PRESENCE_TYPES.has(type))
    throw new StanzaError("bad-request", "modify", `unknown presence type ${JSON.stringify(type)}`);
  if (type !== undefined && SUBSCRIPTION_TYPES.has(type))
    return handleSubscription(ctx, conn, presence, type as SubscriptionType);
  if (type === "probe") return answerClientProbe(ctx, conn, presence);
  if (type === "error") return routePresenceError(ctx, presence);
  if (presence.attrs.to !== undefined) return sendDirected(ctx, conn, presence);
  if (type === "unavailable") return broadcastUnavailable(ctx, conn, presence);
  return broadcastAvailable(ctx, chain, conn, presence);
}
