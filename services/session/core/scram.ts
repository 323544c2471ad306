// RFC 5802 §3, §5 and §7 (SCRAM), RFC 7677 (SCRAM-SHA-256) and RFC 4616 (PLAIN), server side,
// as used by RFC 6120 §6 (SASL negotiation). Pure functions: the exchange state is a plain JSON
// object so a connection snapshot can carry it between the two round trips.
import {
  createHash,
  createHmac,
  pbkdf2,
  pbkdf2Sync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { promisify } from "node:util";

const pbkdf2Async = promisify(pbkdf2);
import { jid, parseJid } from "../../shared/jid.js";
import type {
  Account,
  ScramCredential,
  ScramMechanism,
} from "../../shared/stores/account/account-store.js";
import { SaslFailure } from "./sasl-failure.js";

/** RFC 7677 §4: the iteration count a server announces SHOULD be at least 4096. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
const SALT_BYTES = 16;
const SERVER_NONCE_BYTES = 24;
/** RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets. */
const PLAIN_MAX_FIELD_BYTES = 255;

const DIGESTS: Record<ScramMechanism, { algorithm: "sha1" | "sha256"; bytes: number }> = {
  "SCRAM-SHA-1": { algorithm: "sha1", bytes: 20 },
  "SCRAM-SHA-256": { algorithm: "sha256", bytes: 32 },
};

// RFC 5802 §7: printable = %x21-2B / %x2D-7E (no comma); base64 as in RFC 4648 §4.
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const EXTENSION = /^[A-Za-z]=/;
const GS2_HEADER = /^(n|y|p=[A-Za-z0-9.-]+),(?:a=([^,]*))?,/;

/**
 * SASLprep (RFC 4013) approximated by NFKC: it maps compatibility characters the same way but does
 * not map non-ASCII spaces or delete the "mapped to nothing" characters. Clients that send
 * ASCII passwords, which is nearly all of them, see no difference.
 */
function prepPassword(password: string): string {
  return password.normalize("NFKC");
}

function hmac(mechanism: ScramMechanism, key: Uint8Array, data: string | Uint8Array): Buffer {
  return createHmac(DIGESTS[mechanism].algorithm, key).update(data).digest();
}

function hash(mechanism: ScramMechanism, data: Uint8Array): Buffer {
  return createHash(DIGESTS[mechanism].algorithm).update(data).digest();
}

/** RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i), which is PBKDF2 with HMAC. */
function saltedPassword(
  mechanism: ScramMechanism,
  password: string,
  salt: Uint8Array,
  iterations: number,
): Buffer {
  const { algorithm, bytes } = DIGESTS[mechanism];
  return pbkdf2Sync(prepPassword(password), salt, iterations, bytes, algorithm);
}

/** The stored form of a password: RFC 5802 §3 StoredKey and ServerKey, never the password. */
export function deriveCredential(
  mechanism: ScramMechanism,
  password: string,
  iterations: number,
  salt: Buffer = randomBytes(SALT_BYTES),
): ScramCredential {
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError(`SCRAM iteration count must be a positive integer, got ${iterations}`);
  }
  const salted = saltedPassword(mechanism, password, salt, iterations);
  return {
    salt: salt.toString("base64"),
    iterations,
    storedKey: hash(mechanism, hmac(mechanism, salted, "Client Key")).toString("base64"),
    serverKey: hmac(mechanism, salted, "Server Key").toString("base64"),
  };
}

/** A new account with credentials for both mechanisms, each under its own random salt. */
export function createAccount(password: string, iterations: number): Account {
  return {
    scram: {
      "SCRAM-SHA-1": deriveCredential("SCRAM-SHA-1", password, iterations),
      "SCRAM-SHA-256": deriveCredential("SCRAM-SHA-256", password, iterations),
    },
    createdAt: Date.now(),
  };
}

/** Between server-first and client-final. Plain JSON, safe to store in a connection snapshot. */
export type ScramServerState = {
  mechanism: ScramMechanism;
  /** The decoded SASL username (a localpart, not yet normalized). */
  username: string;
  /** The decoded authzid, or "" when the client sent none. */
  authzid: string;
  /** Needed to check the client-final `c=` attribute (RFC 5802 §7 channel-binding). */
  gs2Header: string;
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
   * The server's domain, needed to honour an authzid (RFC 6120 §6.3.8). Without it a client that
   * sends one is refused with invalid-authzid rather than authorized unchecked.
   */
  domain?: string;
  /**
   * Key for the stand-in salt shown for unknown users. The default is random per process; share a
   * key across session pods, or the salt of a missing user changes with the pod and gives it away.
   */
  unknownUserSaltKey?: Uint8Array;
  /** Iteration count shown for unknown users; set it to what real accounts use. */
  unknownUserIterations?: number;
}

const PROCESS_SALT_KEY = randomBytes(32);

/** Same salt for the same unknown user every time, so probing twice does not reveal absence. */
function standInSalt(mechanism: ScramMechanism, username: string, key: Uint8Array): Buffer {
  return createHmac("sha256", key)
    .update(`${mechanism}\0${username}`)
    .digest()
    .subarray(0, SALT_BYTES);
}

/** Keys no password produces, so unknown users go through the same verification steps. */
const NO_USER: Record<ScramMechanism, ScramCredential> = {
  "SCRAM-SHA-1": noUser("SCRAM-SHA-1"),
  "SCRAM-SHA-256": noUser("SCRAM-SHA-256"),
};

function noUser(mechanism: ScramMechanism): ScramCredential {
  const random = () => randomBytes(DIGESTS[mechanism].bytes).toString("base64");
  return {
    salt: "",
    iterations: DEFAULT_SCRAM_ITERATIONS,
    storedKey: random(),
    serverKey: random(),
  };
}

function malformed(text: string): SaslFailure {
  return new SaslFailure("malformed-request", text);
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
  authzid: string;
  username: string;
  clientNonce: string;
  bare: string;
}

/** RFC 5802 §7 client-first-message. */
function parseClientFirst(message: string): ClientFirst {
  const gs2 = GS2_HEADER.exec(message);
  if (!gs2) throw malformed("malformed gs2-header");
  const [gs2Header, cbindFlag, rawAuthzid] = gs2;
  // "p=" asks for channel binding, which only the -PLUS mechanisms carry (RFC 5802 §6). None is
  // offered, so a "p=" under a plain SCRAM name is a request this mechanism cannot mean.
  if (cbindFlag?.startsWith("p=")) throw malformed("channel binding needs a -PLUS mechanism");
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
    authzid: rawAuthzid === undefined ? "" : decodeSaslName(rawAuthzid),
    username: decodeSaslName(user.slice(2)),
    clientNonce: nonce.slice(2),
    bare,
  };
}

/** The username of a client-first-message, for looking the account up before scramStart. */
export function scramUsername(clientFirstMessage: string): string {
  return parseClientFirst(clientFirstMessage).username;
}

/**
 * RFC 6120 §6.3.8: the only identity a client may ask for is its own bare JID. An authzid that
 * names anyone else, or one we cannot check for lack of a domain, fails.
 */
function checkAuthzid(authzid: string, username: string, domain: string | undefined): void {
  if (authzid === "") return;
  try {
    if (domain !== undefined) {
      const requested = parseJid(authzid);
      if (requested.resource === "" && requested.equals(jid(username, domain))) return;
    }
  } catch {
    // A malformed authzid or username is as unacceptable as a mismatched one.
  }
  throw new SaslFailure("invalid-authzid");
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
  options: ScramStartOptions = {},
): { state: ScramServerState; serverFirst: string } {
  const first = parseClientFirst(clientFirstMessage);
  checkAuthzid(first.authzid, first.username, options.domain);
  const serverNonce = options.serverNonce ?? randomBytes(SERVER_NONCE_BYTES).toString("base64");
  if (!PRINTABLE.test(serverNonce)) throw new RangeError("server nonce must be printable");
  const nonce = first.clientNonce + serverNonce;
  const salt =
    credential?.salt ??
    standInSalt(mechanism, first.username, options.unknownUserSaltKey ?? PROCESS_SALT_KEY).toString(
      "base64",
    );
  const iterations =
    credential?.iterations ?? options.unknownUserIterations ?? DEFAULT_SCRAM_ITERATIONS;
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
 * `<success/>` additional data. `credential` must be looked up again for `state.username`;
 * undefined means no such user. Throws SaslFailure: not-authorized for a wrong proof, an unknown
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
  const gs2Header = Buffer.from(state.gs2Header, "utf8");
  if (!Buffer.from(final.channelBinding, "base64").equals(gs2Header)) {
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

/** RFC 4616 §2 message fields. */
export interface PlainCredentials {
  /** "" when absent. */
  authzid: string;
  authcid: string;
  password: string;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Parses `[authzid] NUL authcid NUL passwd`; throws SaslFailure("malformed-request"). */
export function parsePlain(message: Uint8Array | string): PlainCredentials {
  let text: string;
  try {
    text = typeof message === "string" ? message : UTF8.decode(message);
  } catch {
    throw malformed("PLAIN message is not UTF-8");
  }
  const fields = text.split("\0");
  const [authzid, authcid, password] = fields;
  if (fields.length !== 3 || authzid === undefined || !authcid || !password) {
    throw malformed("PLAIN message needs authcid and password");
  }
  if (fields.some((field) => Buffer.byteLength(field, "utf8") > PLAIN_MAX_FIELD_BYTES)) {
    throw malformed(`PLAIN field exceeds ${PLAIN_MAX_FIELD_BYTES} bytes`);
  }
  return { authzid, authcid, password };
}

/**
 * Checks PLAIN credentials against the account of `credentials.authcid` (undefined if none) by
 * deriving SCRAM-SHA-256's StoredKey from the offered password, so no password is ever stored.
 * An unknown user costs the same key derivation as a known one. `domain` is needed to honour an
 * authzid, as for SCRAM. Returns the username; throws SaslFailure (not-authorized,
 * invalid-authzid).
 */
export function verifyPlain(
  credentials: PlainCredentials,
  account: Account | undefined,
  domain?: string,
): string {
  checkAuthzid(credentials.authzid, credentials.authcid, domain);
  const { stored, salt, iterations } = plainTarget(credentials.authcid, account);
  const offered = deriveCredential("SCRAM-SHA-256", credentials.password, iterations, salt);
  return plainOutcome(credentials.authcid, stored, Buffer.from(offered.storedKey, "base64"));
}

/** How a nonexistent user is made to look real (see ScramStartOptions). */
export interface StandInOptions {
  unknownUserSaltKey?: Uint8Array;
  unknownUserIterations?: number;
}

/** What PLAIN compares against: the stored SHA-256 key, or a stand-in that costs the same. */
function plainTarget(authcid: string, account: Account | undefined, standIn: StandInOptions = {}) {
  const stored = account?.scram["SCRAM-SHA-256"];
  const salt = stored
    ? Buffer.from(stored.salt, "base64")
    : standInSalt("SCRAM-SHA-256", authcid, standIn.unknownUserSaltKey ?? PROCESS_SALT_KEY);
  const iterations =
    stored?.iterations ?? standIn.unknownUserIterations ?? DEFAULT_SCRAM_ITERATIONS;
  return { stored, salt, iterations };
}

function plainOutcome(
  authcid: string,
  stored: ScramCredential | undefined,
  candidate: Buffer,
): string {
  const expected = Buffer.from((stored ?? NO_USER["SCRAM-SHA-256"]).storedKey, "base64");
  const matches = candidate.length === expected.length && timingSafeEqual(candidate, expected);
  if (!matches || stored === undefined) throw new SaslFailure("not-authorized");
  return authcid;
}

export async function plainVerify(
  message: Uint8Array | string,
  lookup: (username: string) => Promise<Account | undefined>,
  domain?: string,
  standIn: StandInOptions = {},
): Promise<string> {
  const credentials = parsePlain(message);
  checkAuthzid(credentials.authzid, credentials.authcid, domain);
  const { stored, salt, iterations } = plainTarget(
    credentials.authcid,
    await lookup(credentials.authcid),
    standIn,
  );
  // PBKDF2 runs on libuv's thread pool here: a login must not stall every other connection.
  const salted = await pbkdf2Async(
    prepPassword(credentials.password),
    salt,
    iterations,
    DIGESTS["SCRAM-SHA-256"].bytes,
    DIGESTS["SCRAM-SHA-256"].algorithm,
  );
  const candidate = hash("SCRAM-SHA-256", hmac("SCRAM-SHA-256", salted, "Client Key"));
  return plainOutcome(credentials.authcid, stored, candidate);
}
