// XEP-0388 (SASL2): the same mechanisms as RFC 6120 SASL (sasl-exchange.ts) in an extensible
// framing that finishes in one <success/> with no stream restart: <authenticate/> carries the
// initial response and inline requests, Bind 2 (XEP-0386, bind2.ts) and FAST tokens (XEP-0484,
// fast.ts), which are processed after authentication and answered inside <success/>. The
// stream features of the authenticated stream follow it (§2.6.1). A <failure/> carries the
// RFC 6120 condition and leaves the stream as it was, so the client may retry (with either
// framing) until maxAuthFailures. XEP-0198 resumption inline in <authenticate/> is not offered
// (the <sm/> inline feature is not advertised): a client resumes after SASL2 the RFC 6120 way,
// by sending <resume/> instead of binding.
import { Element } from "ltx";
import { NS_BIND2, NS_FAST, NS_SASL2 } from "../../../shared/ns.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";
import { bind2, bind2Feature, boundElement, parseBind2, type Bind2Request } from "../bind2.js";
import type { ConnState } from "../connection.js";
import type { SessionContext } from "../context.js";
import type { HandlerChain } from "../handler-chain.js";
import { offeredMechanisms, streamFeatures } from "../stream.js";
import {
  dueForRotation,
  FAST_MECHANISMS,
  fastFeature,
  fastOffered,
  fastVerify,
  issueToken,
  type FastUse,
} from "./fast.js";
import { checkOffered } from "./sasl.js";
import { malformed } from "./sasl-credentials.js";
import {
  authenticatedJid,
  continueExchange,
  decodePayload,
  payloadElement,
  saslAttempt,
  startExchange,
  type SaslStep,
} from "./sasl-exchange.js";
import { SaslFailure } from "./sasl-failure.js";
import type { FastToken } from "../../../shared/stores/fast-token/fast-token-store.js";

/**
 * Longest <user-agent id/> accepted, in characters. XEP-0388 asks for a UUID (36 characters);
 * it becomes part of a Redis key (FAST tokens), so it is bounded.
 */
export const USER_AGENT_ID_MAX_CHARS = 128;

/** What an <authenticate/> asked besides authentication, kept until the exchange ends. */
export interface Sasl2Request {
  mechanism: string;
  /** <user-agent id/>: keys FAST tokens and Bind 2's stable resource. */
  agentId?: string;
  bind?: Bind2Request;
  /** <request-token mechanism/> (XEP-0484 §4.1): the FAST mechanism a new token is for. */
  requestToken?: string;
  /** <fast/> (XEP-0484 §4.3): the client authenticates with a token. */
  fast?: FastUse;
}

/** §2.1: advertised with the first stream features, next to RFC 6120's <mechanisms/>. */
export function sasl2Feature(ctx: SessionContext, conn: ConnState): Element {
  const authentication = new Element("authentication", { xmlns: NS_SASL2 });
  for (const name of offeredMechanisms(ctx, conn)) authentication.c("mechanism").t(name);
  const inline = authentication.c("inline");
  inline.cnode(bind2Feature());
  if (fastOffered(ctx, conn)) inline.cnode(fastFeature());
  return authentication;
}

export async function handleSasl2(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  el: Element,
): Promise<void> {
  const mechanism =
    el.getName() === "authenticate" ? (el.attrs.mechanism ?? "") : (conn.sasl2?.mechanism ?? "");
  await saslAttempt(
    ctx,
    conn,
    mechanism,
    (err) => err.toSasl2Element(),
    () => sasl2Step(ctx, chain, conn, el),
  );
}

async function sasl2Step(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  el: Element,
): Promise<boolean> {
  switch (el.getName()) {
    case "authenticate":
      return authenticate(ctx, chain, conn, el);
    case "response": {
      if (!conn.sasl2) throw malformed("no SASL2 exchange in progress");
      const step = await continueExchange(ctx, conn, decodePayload(el));
      return answer(ctx, chain, conn, step);
    }
    case "abort":
      throw new SaslFailure("aborted");
    default:
      throw malformed(`unexpected <${el.getName()}/>`);
  }
}

async function authenticate(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  el: Element,
): Promise<boolean> {
  conn.sasl = undefined;
  conn.saslAwaiting = undefined;
  conn.sasl2 = undefined;
  const request = parseAuthenticate(ctx, conn, el);
  conn.sasl2 = request;
  const initial = el.getChild("initial-response");
  if (request.fast) {
    // HT mechanisms speak first and only once (XEP-0484 §4.3).
    if (!initial) throw malformed(`${request.mechanism} needs an <initial-response/>`);
    const login = await fastVerify(
      ctx,
      request.agentId as string,
      decodePayload(initial),
      request.fast,
    );
    return answer(ctx, chain, conn, login.step, login.token);
  }
  checkOffered(ctx, conn, request.mechanism);
  if (!initial) {
    // No initial response: ask for it with an empty challenge (RFC 4422 §5).
    conn.saslAwaiting = request.mechanism;
    ctx.send(conn, new Element("challenge", { xmlns: NS_SASL2 }));
    return false;
  }
  const step = await startExchange(ctx, conn, request.mechanism, decodePayload(initial));
  return answer(ctx, chain, conn, step);
}

/** Reads the inline requests of <authenticate/>; a malformed one fails before any work. */
function parseAuthenticate(ctx: SessionContext, conn: ConnState, el: Element): Sasl2Request {
  const mechanism = el.attrs.mechanism ?? "";
  if (mechanism === "") throw malformed("<authenticate/> names no mechanism");
  const request: Sasl2Request = { mechanism };
  const agentId = el.getChild("user-agent")?.attrs.id;
  if (agentId !== undefined) {
    if (agentId === "" || agentId.length > USER_AGENT_ID_MAX_CHARS)
      throw malformed(`<user-agent id/> must be 1 to ${USER_AGENT_ID_MAX_CHARS} characters`);
    request.agentId = agentId;
  }
  const bind = el.getChild("bind", NS_BIND2);
  if (bind) request.bind = parseBind2(bind, ctx.domain);
  const requestToken = el.getChild("request-token", NS_FAST);
  if (requestToken) {
    const tokenMechanism = requestToken.attrs.mechanism ?? "";
    if (!FAST_MECHANISMS.includes(tokenMechanism) || !fastOffered(ctx, conn))
      throw malformed(`no FAST mechanism ${tokenMechanism} is offered`);
    request.requestToken = tokenMechanism;
  }
  const fast = el.getChild("fast", NS_FAST);
  const isFastMechanism = FAST_MECHANISMS.includes(mechanism);
  if (fast || isFastMechanism) {
    if (!fast) throw malformed(`${mechanism} is used with <fast/>`);
    if (!isFastMechanism) throw malformed(`<fast/> goes with a FAST mechanism, not ${mechanism}`);
    if (!fastOffered(ctx, conn)) throw new SaslFailure("encryption-required");
    request.fast = parseFast(fast);
  }
  // XEP-0484 §5: tokens belong to a client installation, named by its user-agent id.
  if ((request.fast || request.requestToken) && request.agentId === undefined)
    throw malformed("FAST needs <user-agent id/>");
  return request;
}

function parseFast(fast: Element): FastUse {
  const use: FastUse = {
    invalidate: fast.attrs.invalidate === "true" || fast.attrs.invalidate === "1",
  };
  if (fast.attrs.count !== undefined) {
    const count = /^\d{1,15}$/.test(fast.attrs.count) ? Number(fast.attrs.count) : 0;
    if (count < 1) throw malformed("<fast count/> is a positive integer");
    use.count = count;
  }
  return use;
}

/** Sends the challenge, or completes the request and sends <success/>; true when done. */
async function answer(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  step: SaslStep,
  usedToken?: FastToken,
): Promise<boolean> {
  if ("challenge" in step) {
    ctx.send(conn, payloadElement("challenge", NS_SASL2, Buffer.from(step.challenge, "utf8")));
    return false;
  }
  const request = conn.sasl2 as Sasl2Request;
  conn.bareJid = authenticatedJid(ctx, step.username);
  const success = new Element("success", { xmlns: NS_SASL2 });
  if (step.additional)
    success.c("additional-data").t(Buffer.from(step.additional).toString("base64"));
  const identifier = success.c("authorization-identifier");
  const token = await tokenFor(ctx, conn.bareJid, request, usedToken);
  if (request.bind) await bindInline(ctx, chain, conn, request);
  // From here to the send nothing awaits: bound together with its <success/> (boundElement).
  const bound = request.bind && boundElement(ctx, conn, request.bind);
  identifier.t(bound ? `${conn.bareJid}/${conn.resource}` : conn.bareJid);
  if (bound) success.cnode(bound);
  if (token) success.cnode(token);
  conn.sasl2 = undefined;
  // No restart (§2.6.1): unbound, the stream is where RFC 6120's restart would have left it.
  if (!bound) conn.stage = "restarted";
  ctx.send(conn, success);
  ctx.send(conn, streamFeatures(ctx, conn));
  ctx.log.debug({ connId: conn.connId, jid: conn.bareJid, bound: !!bound }, "authenticated");
  return true;
}

/**
 * Bind 2 after authentication. A bind that cannot be done (the account's resources are all
 * taken) fails the whole request: the client is told why and stays unauthenticated.
 */
async function bindInline(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  request: Sasl2Request,
): Promise<void> {
  try {
    await bind2(ctx, chain, conn, request.bind as Bind2Request, request.agentId);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    conn.bareJid = undefined;
    throw new SaslFailure("temporary-auth-failure", err.text ?? err.condition);
  }
}

/**
 * XEP-0484 after authentication, before binding: invalidates the token used if asked (§4.6),
 * then issues the token asked for, or a new one for a token used past half its lifetime (§4.5;
 * not after an invalidation). A bind that then fails leaves the new token unsent in the fresh
 * slot, where the next token replaces it; the current one still works.
 */
async function tokenFor(
  ctx: SessionContext,
  bareJid: string,
  request: Sasl2Request,
  used: FastToken | undefined,
): Promise<Element | undefined> {
  const agentId = request.agentId as string;
  if (used && request.fast?.invalidate)
    await ctx.stores.fastTokens.invalidate(bareJid, agentId, used.hash);
  if (request.requestToken) return issueToken(ctx, bareJid, agentId, request.requestToken);
  if (used && !request.fast?.invalidate && dueForRotation(ctx, used))
    return issueToken(ctx, bareJid, agentId, used.mechanism);
  return undefined;
}
