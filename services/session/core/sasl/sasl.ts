// RFC 6120 §6 SASL negotiation: SCRAM-SHA-256, SCRAM-SHA-1 (RFC 5802, RFC 7677) and PLAIN
// (RFC 4616, when allowed). Failures are <failure/> elements the client may retry after
// (§6.4.5) until maxAuthFailures, which ends the stream with policy-violation. Success asks
// for a stream restart (§6.4.6); SASL2 (sasl2.ts) shares the mechanisms, not the framing.
import { Element } from "ltx";
import { NS_SASL } from "../../../shared/ns.js";
import type { ConnState } from "../connection.js";
import type { SessionContext } from "../context.js";
import { offeredMechanisms } from "../stream.js";
import { SaslFailure } from "./sasl-failure.js";
import {
  authenticatedJid,
  continueExchange,
  decodePayload,
  payloadElement,
  saslAttempt,
  startExchange,
  type SaslStep,
} from "./sasl-exchange.js";

export async function handleSasl(ctx: SessionContext, conn: ConnState, el: Element): Promise<void> {
  // Which exchange this element ends, if it ends one (for the login count).
  const mechanism =
    el.getName() === "auth"
      ? (el.attrs.mechanism ?? "")
      : (conn.sasl?.chosen ?? conn.sasl?.mechanism ?? conn.saslAwaiting ?? "");
  await saslAttempt(
    ctx,
    conn,
    mechanism,
    (err) => err.toElement(),
    async () => {
      const step = await saslStep(ctx, conn, el);
      return step !== undefined && answer(ctx, conn, step);
    },
  );
}

function saslStep(
  ctx: SessionContext,
  conn: ConnState,
  el: Element,
): Promise<SaslStep | undefined> {
  switch (el.getName()) {
    case "auth":
      return handleAuth(ctx, conn, el);
    case "response":
      // An exchange begun with SASL2 ends in SASL2: its inline requests await the <success/>.
      if (conn.sasl2) throw new SaslFailure("malformed-request", "the exchange began in SASL2");
      return continueExchange(ctx, conn, decodePayload(el));
    case "abort":
      throw new SaslFailure("aborted");
    default:
      throw new SaslFailure("malformed-request", `unexpected <${el.getName()}/>`);
  }
}

/**
 * RFC 6120 §6.5.3: a mechanism the server has but will not use on a stream that is not
 * protected is encryption-required, which tells the client why; one it does not have at all is
 * invalid-mechanism (§6.5.5).
 */
export function checkOffered(ctx: SessionContext, conn: ConnState, mechanism: string): void {
  if (offeredMechanisms(ctx, conn).includes(mechanism)) return;
  if (mechanism === "PLAIN" && ctx.config.allowPlain) throw new SaslFailure("encryption-required");
  throw new SaslFailure("invalid-mechanism");
}

async function handleAuth(
  ctx: SessionContext,
  conn: ConnState,
  el: Element,
): Promise<SaslStep | undefined> {
  const mechanism = el.attrs.mechanism ?? "";
  conn.sasl = undefined;
  conn.saslAwaiting = undefined;
  conn.sasl2 = undefined;
  checkOffered(ctx, conn, mechanism);
  if (el.getText().trim() === "") {
    // No initial response (not even "="): ask for it with an empty challenge (RFC 4422 §5).
    conn.saslAwaiting = mechanism;
    ctx.send(conn, new Element("challenge", { xmlns: NS_SASL }));
    return undefined;
  }
  return startExchange(ctx, conn, mechanism, decodePayload(el));
}

/** Sends the challenge or the success a step produced; true when authenticated. */
function answer(ctx: SessionContext, conn: ConnState, step: SaslStep): boolean {
  if ("challenge" in step) {
    ctx.send(conn, payloadElement("challenge", NS_SASL, Buffer.from(step.challenge, "utf8")));
    return false;
  }
  const bare = authenticatedJid(ctx, step.username);
  conn.bareJid = bare;
  conn.stage = "authenticated";
  ctx.send(conn, payloadElement("success", NS_SASL, step.additional));
  ctx.log.debug({ connId: conn.connId, jid: bare }, "authenticated");
  return true;
}
