// RFC 5802 §5 and §7 (SCRAM), RFC 7677 (SCRAM-SHA-256), the server side of the exchange,
// as used by RFC 6120 §6 (SASL negotiation), with channel binding (§6, the -PLUS variants) over
// the TLS connections the edge terminates. Pure functions: the exchange state is a plain JSON
// object so a connection snapshot can carry it between the two round trips.
import { timingSafeEqual } from "node:crypto";
import { randomId } from "../../../shared/random-id.js";
import type {
  ScramCredential,
  ScramMechanism,
} from "../../../shared/stores/account/account-store.js";
import {
  BASE64,
  checkAuthzid,
  DIGESTS,
  hash,
  hmac,
  malformed,
  NO_USER,
  standInSalt,
  type StandIn,
} from "./sasl-credentials.js";
import { SaslFailure } from "./sasl-failure.js";

const SERVER_NONCE_BYTES = 24;

// RFC 5802 §7: printable = %x21-2B / %x2D-7E (no comma); base64 as in RFC 4648 §4.
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const EXTENSION = /^[A-Za-z]=/;
const GS2_HEADER = /^(n|y|p=[A-Za-z0-9.-]+),(?:a=([^,]*))?,/;

/** Between server-first and client-final. Plain JSON, safe to store in a connection snapshot. */
export type ScramServerState = {
  mechanism: ScramMechanism;
  /** The decoded SASL username (a localpart, not yet normalized). */
  username: string;
  /** The decoded authzid, or "" when the client sent none. */
  authzid: string;
  /** Needed to check the client-final `c=` attribute (RFC 5802 §7 channel-binding). */
  gs2Header: string;
  /** -PLUS: the channel-binding data (base64) `c=` must carry after the gs2 header. */
  cbData?: string;
  /** The mechanism's name as the client chose it (`mechanism` with -PLUS), for the login count. */
  chosen?: string;
  clientFirstBare: string;
  serverFirst: string;
  /** Client nonce followed by server nonce. */
  nonce: string;
  stage: "server-first-sent" | "complete";
};

export interface ScramStartOptions {
  /** The server's half of the nonce; random when omitted. Tests inject the RFC vectors' value. */
  serverNonce?: string;
  /**
   * The server's domain: it normalizes the username for the stand-in salt, and an authzid is
   * honoured only if it names the user's own bare JID there (RFC 6120 §6.3.8).
   */
  domain: string;
  /** What an unknown user is shown instead of a stored salt and iteration count. */
  standIn: StandIn;
  /** The client chose the -PLUS variant of `mechanism` (RFC 5802 §6). */
  plus?: boolean;
  /**
   * The connection's channel-binding data (base64) by type, when the server offers -PLUS on
   * it; absent or empty when it offers none.
   */
  channelBindings?: Readonly<Record<string, string>>;
}

/** RFC 5802 §7 saslname: "," and "=" travel as "=2C" and "=3D"; any other "=" is malformed. */
function decodeSaslName(value: string): string {
  if (value === "" || value.includes("\0") || /=(?!2C|3D)/.test(value)) {
    throw malformed("malformed saslname");
  }
  return value.replace(/=(2C|3D)/g, (escape) => (escape === "=2C" ? "," : "="));
}

interface ClientFirst {
  gs2Header: string;
  /** gs2-cbind-flag: "n", "y" or "p=<type>". */
  cbindFlag: string;
  authzid: string;
  username: string;
  clientNonce: string;
  bare: string;
}

/** RFC 5802 §7 client-first-message. */
function parseClientFirst(message: string): ClientFirst {
  const gs2 = GS2_HEADER.exec(message);
  if (!gs2) throw malformed("malformed gs2-header");
  const [gs2Header, cbindFlag = "", rawAuthzid] = gs2;
  const bare = message.slice(gs2Header.length);
  const [user, nonce, ...extensions] = bare.split(",");
  // RFC 5802 §5.1: a server that sees "m=" (mandatory extension) it does not know MUST fail.
  if (user?.startsWith("m=")) throw malformed("unsupported mandatory extension");
  if (!user?.startsWith("n=")) throw malformed("missing username");
  if (!nonce?.startsWith("r=") || !PRINTABLE.test(nonce.slice(2))) {
    throw malformed("missing or malformed nonce");
  }
  if (!extensions.every((ext) => EXTENSION.test(ext))) throw malformed("malformed attribute");
  return {
    gs2Header,
    cbindFlag,
    authzid: rawAuthzid === undefined ? "" : decodeSaslName(rawAuthzid),
    username: decodeSaslName(user.slice(2)),
    clientNonce: nonce.slice(2),
    bare,
  };
}

/**
 * RFC 5802 §6: what the gs2-cbind-flag may say under the chosen mechanism, and the
 * channel-binding data the client-final message must then prove; undefined for none.
 */
function boundChannel(cbindFlag: string, options: ScramStartOptions): string | undefined {
  const bindings = options.channelBindings ?? {};
  if (options.plus) {
    if (!cbindFlag.startsWith("p=")) throw malformed("a -PLUS mechanism needs p=<type>");
    const data = bindings[cbindFlag.slice(2)];
    // A type this connection has no data for cannot be proven (RFC 5802 §7
    // unsupported-channel-binding-type); the login fails as a wrong binding would.
    if (data === undefined)
      throw new SaslFailure("not-authorized", "unsupported channel binding type");
    return data;
  }
  // "p=" asks for channel binding, which only the -PLUS mechanisms carry.
  if (cbindFlag.startsWith("p=")) throw malformed("channel binding needs a -PLUS mechanism");
  // "y": the client could bind but believes the server cannot. The server offered -PLUS, so
  // someone removed it on the way: a downgrade, which must fail (RFC 5802 §6).
  if (cbindFlag === "y" && Object.keys(bindings).length > 0)
    throw new SaslFailure("not-authorized", "channel binding was offered (downgrade)");
  return undefined;
}

/** The username of a client-first-message, for looking the account up before scramStart. */
export function scramUsername(clientFirstMessage: string): string {
  return parseClientFirst(clientFirstMessage).username;
}

/**
 * Consumes the client-first-message and produces server-first (RFC 5802 §5). `credential` is the
 * account's credential for this mechanism, or undefined if there is no such user: the exchange
 * then carries on with a stand-in salt and fails only in scramFinish, as a wrong password would.
 * Throws SaslFailure (malformed-request, invalid-authzid).
 */
export function scramStart(
  mechanism: ScramMechanism,
  clientFirstMessage: string,
  credential: ScramCredential | undefined,
  options: ScramStartOptions,
): { state: ScramServerState; serverFirst: string } {
  const first = parseClientFirst(clientFirstMessage);
  const cbData = boundChannel(first.cbindFlag, options);
  checkAuthzid(first.authzid, first.username, options.domain);
  const serverNonce = options.serverNonce ?? randomId(SERVER_NONCE_BYTES, "base64");
  if (!PRINTABLE.test(serverNonce)) throw new RangeError("server nonce must be printable");
  const nonce = first.clientNonce + serverNonce;
  const { standIn, domain } = options;
  const salt =
    credential?.salt ??
    standInSalt(mechanism, first.username, domain, standIn.saltKey).toString("base64");
  const iterations = credential?.iterations ?? standIn.iterations;
  const serverFirst = `r=${nonce},s=${salt},i=${iterations}`;
  const state: ScramServerState = {
    mechanism,
    username: first.username,
    authzid: first.authzid,
    gs2Header: first.gs2Header,
    clientFirstBare: first.bare,
    serverFirst,
    nonce,
    stage: "server-first-sent",
  };
  if (cbData !== undefined) {
    state.cbData = cbData;
    state.chosen = `${mechanism}-PLUS`;
  }
  return { state, serverFirst };
}

interface ClientFinal {
  withoutProof: string;
  channelBinding: string;
  nonce: string;
  proof: Buffer;
}

/** RFC 5802 §7 client-final-message. */
function parseClientFinal(message: string, proofBytes: number): ClientFinal {
  const attrs = message.split(",");
  const [cbind, nonce] = attrs;
  const proof = attrs.at(-1);
  if (attrs.length < 3 || !cbind?.startsWith("c=") || !nonce?.startsWith("r=")) {
    throw malformed("malformed client-final-message");
  }
  if (!proof?.startsWith("p=") || !BASE64.test(proof.slice(2)) || !BASE64.test(cbind.slice(2))) {
    throw malformed("malformed proof or channel binding");
  }
  if (!attrs.slice(2, -1).every((ext) => EXTENSION.test(ext))) {
    throw malformed("malformed attribute");
  }
  const proofValue = Buffer.from(proof.slice(2), "base64");
  if (proofValue.length !== proofBytes) throw malformed("proof has the wrong length");
  return {
    withoutProof: message.slice(0, message.length - proof.length - 1),
    channelBinding: cbind.slice(2),
    nonce: nonce.slice(2),
    proof: proofValue,
  };
}

/**
 * Verifies the client-final-message and returns server-final (`v=`, RFC 5802 §5) for the
 * `<success/>` additional data. `credential` is `state.username`'s for `state.mechanism` (the
 * one scramStart was given, or read again); undefined means no such user. Throws SaslFailure: not-authorized for a wrong proof, an unknown
 * user, or a channel binding or nonce that does not match; malformed-request for syntax errors.
 */
export function scramFinish(
  state: ScramServerState,
  credential: ScramCredential | undefined,
  clientFinalMessage: string,
): { serverFinal: string; username: string; state: ScramServerState } {
  if (state.stage !== "server-first-sent") throw malformed("exchange already complete");
  const { mechanism } = state;
  const final = parseClientFinal(clientFinalMessage, DIGESTS[mechanism].bytes);
  // RFC 5802 §7: cbind-input = gs2-header [ cbind-data ], the data only under "p=".
  const cbindInput = Buffer.concat([
    Buffer.from(state.gs2Header, "utf8"),
    Buffer.from(state.cbData ?? "", "base64"),
  ]);
  if (!Buffer.from(final.channelBinding, "base64").equals(cbindInput)) {
    throw new SaslFailure("not-authorized");
  }
  if (final.nonce !== state.nonce) throw new SaslFailure("not-authorized");

  const keys = credential ?? NO_USER[mechanism];
  const storedKey = Buffer.from(keys.storedKey, "base64");
  const authMessage = `${state.clientFirstBare},${state.serverFirst},${final.withoutProof}`;
  const clientSignature = hmac(mechanism, storedKey, authMessage);
  const clientKey = Buffer.alloc(final.proof.length);
  for (let i = 0; i < clientKey.length; i++) {
    clientKey[i] = (final.proof[i] ?? 0) ^ (clientSignature[i] ?? 0);
  }
  const candidate = hash(mechanism, clientKey);
  const matches = candidate.length === storedKey.length && timingSafeEqual(candidate, storedKey);
  if (!matches || credential === undefined) throw new SaslFailure("not-authorized");

  const serverSignature = hmac(mechanism, Buffer.from(keys.serverKey, "base64"), authMessage);
  return {
    serverFinal: `v=${serverSignature.toString("base64")}`,
    username: state.username,
    state: { ...state, stage: "complete" },
  };
}
