// RFC 6120 §6 SASL negotiation: SCRAM-SHA-256, SCRAM-SHA-1 (RFC 5802, RFC 7677) and PLAIN
// (RFC 4616, when allowed). Failures are <failure/> elements the client may retry after
// (§6.4.5) until maxAuthFailures, which ends the stream with policy-violation.
import { Element } from "ltx";
import type { ScramMechanism } from "../../../shared/stores/account/account-store.js";
import { NS_SASL } from "../../../shared/ns.js";
import type { ConnState } from "../connection.js";
import type { SessionContext } from "../context.js";
import { SaslFailure } from "./sasl-failure.js";
import { plainVerify } from "./plain.js";
import { accountJid, BASE64, type AccountLookup } from "./sasl-credentials.js";
import { scramFinish, scramStart, scramUsername } from "./scram.js";
import { offeredMechanisms } from "../stream.js";

/**
 * Longest SASL payload accepted, in base64 characters (3 KiB decoded). SCRAM and PLAIN messages
 * are a few hundred bytes; the exchange state (nonces, usernames) is kept in the connection's
 * snapshot, so an oversized one would be stored and rewritten on every packet.
 */
const SASL_MAX_BASE64_CHARS = 4096;

/** RFC 6120 §6.4.2: "=" is an empty response; anything else must be strict base64. */
function decodePayload(el: Element): Buffer {
  const text = el.getText().trim();
  if (text === "=") return Buffer.alloc(0);
  if (text.length > SASL_MAX_BASE64_CHARS)
    throw new SaslFailure("malformed-request", "SASL message too long");
  if (!BASE64.test(text)) throw new SaslFailure("incorrect-encoding");
  return Buffer.from(text, "base64");
}

function saslElement(name: string, payload?: string): Element {
  const el = new Element(name, { xmlns: NS_SASL });
  if (payload !== undefined) el.t(payload === "" ? "=" : Buffer.from(payload).toString("base64"));
  return el;
}

/**
 * The secret behind stand-in salts: the configured one, else the one the account store keeps
 * for the whole deployment (created once in Redis), so every process answers alike.
 */
async function standInKey(ctx: SessionContext): Promise<Uint8Array> {
  const configured = ctx.config.scramStandInKey;
  return configured ? Buffer.from(configured, "utf8") : ctx.stores.accounts.standInKey();
}

async function lookupAccount(ctx: SessionContext, username: string) {
  const bare = accountJid(username, ctx.domain);
  return bare ? ctx.stores.accounts.get(bare) : undefined;
}

/**
 * The account and the stand-in, read together: a missing user costs the same round trips
 * as a real one. The stand-in's iteration count is what new accounts get (scramIterations).
 */
async function lookupWithStandIn(ctx: SessionContext, username: string): Promise<AccountLookup> {
  const [account, saltKey] = await Promise.all([lookupAccount(ctx, username), standInKey(ctx)]);
  return { account, standIn: { saltKey, iterations: ctx.config.scramIterations } };
}

export async function handleSasl(ctx: SessionContext, conn: ConnState, el: Element): Promise<void> {
  // Which exchange this element ends, if it ends one (for the login count).
  const mechanism =
    el.getName() === "auth"
      ? (el.attrs.mechanism ?? "")
      : (conn.sasl?.mechanism ?? conn.saslAwaiting ?? "");
  try {
    await saslStep(ctx, conn, el);
    if (conn.stage === "authenticated") ctx.observe.login(mechanism, "success");
  } catch (err) {
    if (!(err instanceof SaslFailure)) throw err;
    ctx.observe.login(mechanism, err.condition);
    conn.sasl = undefined;
    conn.saslAwaiting = undefined;
    // The server being busy is not the client's failed attempt.
    if (err.condition !== "temporary-auth-failure") conn.authFailures++;
    ctx.log.info(
      { connId: conn.connId, condition: err.condition, failures: conn.authFailures },
      "SASL failure",
    );
    ctx.send(conn, err.toElement());
    if (conn.authFailures >= ctx.config.maxAuthFailures)
      ctx.close(conn, "policy-violation", "too many failed authentication attempts");
  }
}

function saslStep(ctx: SessionContext, conn: ConnState, el: Element): Promise<void> {
  switch (el.getName()) {
    case "auth":
      return handleAuth(ctx, conn, el);
    case "response":
      return handleResponse(ctx, conn, el);
    case "abort":
      throw new SaslFailure("aborted");
    default:
      throw new SaslFailure("malformed-request", `unexpected <${el.getName()}/>`);
  }
}

async function handleAuth(ctx: SessionContext, conn: ConnState, el: Element): Promise<void> {
  const mechanism = el.attrs.mechanism ?? "";
  conn.sasl = undefined;
  conn.saslAwaiting = undefined;
  if (!offeredMechanisms(ctx, conn).includes(mechanism)) {
    // RFC 6120 §6.5.3: a mechanism the server has but will not use on a stream that is not
    // protected is encryption-required, which tells the client why; one it does not have at
    // all is invalid-mechanism (§6.5.5).
    if (mechanism === "PLAIN" && ctx.config.allowPlain)
      throw new SaslFailure("encryption-required");
    throw new SaslFailure("invalid-mechanism");
  }
  if (el.getText().trim() === "") {
    // No initial response (not even "="): ask for it with an empty challenge (RFC 4422 §5).
    conn.saslAwaiting = mechanism;
    ctx.send(conn, new Element("challenge", { xmlns: NS_SASL }));
    return;
  }
  return startMechanism(ctx, conn, mechanism, decodePayload(el));
}

async function startMechanism(
  ctx: SessionContext,
  conn: ConnState,
  mechanism: string,
  payload: Buffer,
): Promise<void> {
  if (mechanism === "PLAIN") {
    const username = await plainVerify(payload, {
      lookup: (u) => lookupWithStandIn(ctx, u),
      domain: ctx.domain,
      queueMaxLogins: ctx.config.plainQueueMaxLogins,
    });
    return succeed(ctx, conn, username);
  }
  const clientFirst = payload.toString("utf8");
  const username = scramUsername(clientFirst);
  const { account, standIn } = await lookupWithStandIn(ctx, username);
  const scram = mechanism as ScramMechanism;
  const credential = account?.scram[scram];
  const { state, serverFirst } = scramStart(scram, clientFirst, credential, {
    domain: ctx.domain,
    standIn,
  });
  conn.sasl = state;
  ctx.send(conn, saslElement("challenge", serverFirst));
}

async function handleResponse(ctx: SessionContext, conn: ConnState, el: Element): Promise<void> {
  if (conn.saslAwaiting) {
    const mechanism = conn.saslAwaiting;
    conn.saslAwaiting = undefined;
    return startMechanism(ctx, conn, mechanism, decodePayload(el));
  }
  const state = conn.sasl;
  if (!state) throw new SaslFailure("malformed-request", "no exchange in progress");
  const account = await lookupAccount(ctx, state.username);
  const { serverFinal, username } = scramFinish(
    state,
    account?.scram[state.mechanism],
    decodePayload(el).toString("utf8"),
  );
  // RFC 6120 §6.3.10: the server-final message travels as additional data with success.
  return succeed(ctx, conn, username, serverFinal);
}

function succeed(
  ctx: SessionContext,
  conn: ConnState,
  username: string,
  additional?: string,
): void {
  const bare = accountJid(username, ctx.domain);
  if (!bare) throw new SaslFailure("not-authorized");
  conn.sasl = undefined;
  conn.bareJid = bare;
  conn.stage = "authenticated";
  ctx.send(conn, saslElement("success", additional));
  ctx.log.debug({ connId: conn.connId, jid: bare }, "authenticated");
}
