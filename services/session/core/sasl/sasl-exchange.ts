// The mechanisms' side of a SASL exchange (RFC 4422), whichever framing carries it: RFC 6120 §6
// (<auth/>, sasl.ts) or XEP-0388 SASL2 (<authenticate/>, sasl2.ts). A step either asks the
// client for more (a challenge) or ends with the authenticated username; failures are thrown
// as SaslFailure. The framing decides what is offered, what is sent and what follows success.
import { Element } from "ltx";
import type {
  ScramCredential,
  ScramMechanism,
} from "../../../shared/stores/account/account-store.js";
import type { ConnState } from "../connection.js";
import type { SessionContext } from "../context.js";
import { channelBindings } from "../stream.js";
import { plainVerify } from "./plain.js";
import { accountJid, BASE64, type AccountLookup } from "./sasl-credentials.js";
import { SaslFailure } from "./sasl-failure.js";
import { scramFinish, scramStart, scramUsername, type ScramServerState } from "./scram.js";

/**
 * Longest SASL payload accepted, in base64 characters (3 KiB decoded). SCRAM and PLAIN messages
 * are a few hundred bytes; the exchange state (nonces, usernames) is kept in the connection's
 * snapshot, so an oversized one would be stored and rewritten on every packet.
 */
const SASL_MAX_BASE64_CHARS = 4096;

const PLUS = "-PLUS";

/**
 * The credential the first step of a SCRAM exchange read, for its last step: one account read
 * per login instead of two. Kept beside the exchange's state, in this process only, since
 * the state is stored in snapshots and the keys must not be; an exchange taken over by another
 * process (or whose state was restored from a copy) reads the account again.
 */
const credentialReadAtStart = new WeakMap<ScramServerState, ScramCredential | undefined>();

/** What a step of the exchange produced. */
export type SaslStep =
  /** Send this challenge (RFC 4422 §3.4; "" is an empty one) and wait for a response. */
  | { challenge: string }
  /** Authenticated as `username`; `additional` is data for the success element (§3.6). */
  | { username: string; additional?: Buffer };

/** RFC 6120 §6.4.2: "=" is an empty response; anything else must be strict base64. */
export function decodePayload(el: Element): Buffer {
  const text = el.getText().trim();
  if (text === "=") return Buffer.alloc(0);
  if (text.length > SASL_MAX_BASE64_CHARS)
    throw new SaslFailure("malformed-request", "SASL message too long");
  if (!BASE64.test(text)) throw new SaslFailure("incorrect-encoding");
  return Buffer.from(text, "base64");
}

/** A SASL element in namespace `ns` carrying `payload` base64-encoded ("=" when empty). */
export function payloadElement(name: string, ns: string, payload?: Uint8Array): Element {
  const el = new Element(name, { xmlns: ns });
  if (payload !== undefined)
    el.t(payload.length === 0 ? "=" : Buffer.from(payload).toString("base64"));
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

export async function lookupAccount(ctx: SessionContext, username: string) {
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

/**
 * Starts `mechanism` (PLAIN or SCRAM-*, already checked to be offered) with the client's
 * initial response. SCRAM keeps its state in conn.sasl until the client's final message.
 */
export async function startExchange(
  ctx: SessionContext,
  conn: ConnState,
  mechanism: string,
  payload: Buffer,
): Promise<SaslStep> {
  if (mechanism === "PLAIN") {
    const username = await plainVerify(payload, {
      lookup: (u) => lookupWithStandIn(ctx, u),
      domain: ctx.domain,
      queueMaxLogins: ctx.config.plainQueueMaxLogins,
    });
    return { username };
  }
  const clientFirst = payload.toString("utf8");
  const username = scramUsername(clientFirst);
  const { account, standIn } = await lookupWithStandIn(ctx, username);
  // A -PLUS variant (offered only with channel bindings) uses its base mechanism's credential.
  const plus = mechanism.endsWith(PLUS);
  const scram = (plus ? mechanism.slice(0, -PLUS.length) : mechanism) as ScramMechanism;
  const credential = account?.scram[scram];
  const { state, serverFirst } = scramStart(scram, clientFirst, credential, {
    domain: ctx.domain,
    standIn,
    plus,
    channelBindings: channelBindings(ctx, conn),
  });
  conn.sasl = state;
  credentialReadAtStart.set(state, credential);
  return { challenge: serverFirst };
}

/** The client's response to our last challenge. */
export async function continueExchange(
  ctx: SessionContext,
  conn: ConnState,
  payload: Buffer,
): Promise<SaslStep> {
  if (conn.saslAwaiting) {
    // The initial response, asked for with an empty challenge (RFC 4422 §5).
    const mechanism = conn.saslAwaiting;
    conn.saslAwaiting = undefined;
    return startExchange(ctx, conn, mechanism, payload);
  }
  const state = conn.sasl;
  if (!state) throw new SaslFailure("malformed-request", "no exchange in progress");
  const credential = credentialReadAtStart.has(state)
    ? credentialReadAtStart.get(state)
    : (await lookupAccount(ctx, state.username))?.scram[state.mechanism];
  const { serverFinal, username } = scramFinish(state, credential, payload.toString("utf8"));
  conn.sasl = undefined;
  // RFC 6120 §6.3.10, XEP-0388 §2.6.1: the server-final message travels as additional data.
  return { username, additional: Buffer.from(serverFinal, "utf8") };
}

/**
 * Runs one SASL step of either framing: counts the login when `step` reports it complete,
 * and turns a SaslFailure into the framing's <failure/> (`failure`), which the client may
 * retry after (RFC 6120 §6.4.5) until maxAuthFailures ends the stream with policy-violation.
 */
export async function saslAttempt(
  ctx: SessionContext,
  conn: ConnState,
  mechanism: string,
  failure: (err: SaslFailure) => Element,
  step: () => Promise<boolean>,
): Promise<void> {
  try {
    if (await step()) ctx.observe.login(mechanism, "success");
  } catch (err) {
    if (!(err instanceof SaslFailure)) throw err;
    ctx.observe.login(mechanism, err.condition);
    conn.sasl = undefined;
    conn.saslAwaiting = undefined;
    conn.sasl2 = undefined;
    // The server being busy is not the client's failed attempt.
    if (err.condition !== "temporary-auth-failure") conn.authFailures++;
    ctx.log.info(
      { connId: conn.connId, condition: err.condition, failures: conn.authFailures },
      "SASL failure",
    );
    ctx.send(conn, failure(err));
    if (conn.authFailures >= ctx.config.maxAuthFailures)
      ctx.close(conn, "policy-violation", "too many failed authentication attempts");
  }
}

/** The bare JID `username` authenticates, or not-authorized if it names none. */
export function authenticatedJid(ctx: SessionContext, username: string): string {
  const bare = accountJid(username, ctx.domain);
  if (!bare) throw new SaslFailure("not-authorized");
  return bare;
}
