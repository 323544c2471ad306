// XEP-0484 (FAST): tokens a client gets in a SASL2 <success/> and logs in with later, in one
// message and without PBKDF2, through the HT-SHA-256-NONE mechanism of
// draft-schmaus-kitten-sasl-ht (the one @xmpp/client implements):
//   client: authcid NUL HMAC-SHA-256(token, "Initiator")    (no channel binding data)
//   server: HMAC-SHA-256(token, "Responder")                 (SASL2 additional data)
// Tokens are kept hashed (FastTokenStore): a token is 72 characters, longer than SHA-256's
// 64-byte block, so HMAC keys with SHA-256(token) in place of the token (RFC 2104 §2) and the
// server checks it from the hash alone. The hash stands in for the token only in that HMAC: it
// never travels, and the token itself (which a client keeps like a password) is not stored.
// Whoever reads the stored hash can still compute the HMAC, so the store is as secret as the
// account store.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { Element } from "ltx";
import { NS_FAST } from "../../../shared/ns.js";
import type { FastToken } from "../../../shared/stores/fast-token/fast-token-store.js";
import type { ConnState } from "../connection.js";
import type { SessionContext } from "../context.js";
import { connectionSecure } from "../stream.js";
import { accountJid } from "./sasl-credentials.js";
import { lookupAccount, type SaslStep } from "./sasl-exchange.js";
import { SaslFailure } from "./sasl-failure.js";

export const HT_SHA_256_NONE = "HT-SHA-256-NONE";
/** The FAST mechanisms offered, in order of preference. */
export const FAST_MECHANISMS: readonly string[] = [HT_SHA_256_NONE];

/** Random bytes of a token: 54 make 72 base64url characters, past HMAC's 64-byte block. */
const TOKEN_BYTES = 54;
const HMAC_BYTES = 32;

/** XEP-0484 §7: a token can be replayed by whoever reads it, so only on secure connections. */
export function fastOffered(ctx: SessionContext, conn: ConnState): boolean {
  return !ctx.config.fastRequiresTls || connectionSecure(ctx, conn);
}

/** §3: inside SASL2's <inline/>. */
export function fastFeature(): Element {
  const fast = new Element("fast", { xmlns: NS_FAST });
  for (const mechanism of FAST_MECHANISMS) fast.c("mechanism").t(mechanism);
  return fast;
}

function tokenHash(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

function htMac(keyHash: Buffer, label: "Initiator" | "Responder"): Buffer {
  return createHmac("sha256", keyHash).update(label).digest();
}

/** What the client asked of FAST in <authenticate/> (XEP-0484 §4.3, §4.6). */
export interface FastUse {
  /** The replay counter (§4.3), when the client sent one. */
  count?: number;
  /** Invalidate the token once it authenticated (§4.6). */
  invalidate: boolean;
}

/** Outcome of a token login: the HT exchange's result and the token it used. */
export interface FastLogin {
  step: SaslStep & { username: string };
  token: FastToken;
}

/**
 * Checks an HT-SHA-256-NONE initial response against the tokens of (user, `agentId`) and
 * accepts the matching one once (FastTokenStore.use: expiry, the replay counter, rotation of
 * the slots). Any mismatch, unknown user or refused token is not-authorized; the client then
 * falls back to its password (§6).
 */
export async function fastVerify(
  ctx: SessionContext,
  agentId: string,
  payload: Buffer,
  use: FastUse,
): Promise<FastLogin> {
  const nul = payload.indexOf(0);
  if (nul <= 0 || payload.length - nul - 1 !== HMAC_BYTES)
    throw new SaslFailure("malformed-request", "HT message is authcid NUL 32-byte HMAC");
  const username = payload.subarray(0, nul).toString("utf8");
  const offered = payload.subarray(nul + 1);
  const bare = accountJid(username, ctx.domain);
  if (!bare) throw new SaslFailure("not-authorized");
  const [account, tokens] = await Promise.all([
    lookupAccount(ctx, username),
    ctx.stores.fastTokens.get(bare, agentId),
  ]);
  const now = ctx.now();
  const token = tokens.find((t) => {
    if (t.mechanism !== HT_SHA_256_NONE || t.expiresAtMs <= now) return false;
    return timingSafeEqual(htMac(Buffer.from(t.hash, "base64"), "Initiator"), offered);
  });
  if (!account || !token) throw new SaslFailure("not-authorized");
  if (!(await ctx.stores.fastTokens.use(bare, agentId, token.hash, now, use.count)))
    throw new SaslFailure("not-authorized");
  return {
    step: { username, additional: htMac(Buffer.from(token.hash, "base64"), "Responder") },
    token,
  };
}

/**
 * A new token for (user, `agentId`) and `mechanism`, stored hashed in the fresh slot (the
 * current one stays until this one is used): the <token/> for the SASL2 <success/> (§4.2).
 */
export async function issueToken(
  ctx: SessionContext,
  bareJid: string,
  agentId: string,
  mechanism: string,
): Promise<Element> {
  const token = randomBytes(TOKEN_BYTES).toString("base64url");
  const expiresAtMs = ctx.now() + ctx.config.fastTokenTtlMs;
  await ctx.stores.fastTokens.issue(bareJid, agentId, {
    hash: tokenHash(token).toString("base64"),
    mechanism,
    expiresAtMs,
    count: 0,
  });
  return new Element("token", {
    xmlns: NS_FAST,
    expiry: new Date(expiresAtMs).toISOString(),
    token,
  });
}

/** §4.5: a token used with less than half its lifetime left is replaced by a new one. */
export function dueForRotation(ctx: SessionContext, token: FastToken): boolean {
  return token.expiresAtMs - ctx.now() < ctx.config.fastTokenTtlMs / 2;
}
