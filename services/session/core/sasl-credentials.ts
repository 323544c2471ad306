// SASL credentials (RFC 5802 §3): deriving the stored SCRAM keys from a password, the
// primitives both SCRAM and PLAIN verification use, and the stand-ins that make a
// nonexistent user cost and look the same as a real one.
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { jid, parseJid } from "../../shared/jid.js";
import type {
  Account,
  ScramCredential,
  ScramMechanism,
} from "../../shared/stores/account/account-store.js";
import { SaslFailure } from "./sasl-failure.js";

const pbkdf2Async = promisify(pbkdf2);

/** RFC 7677 §4: the iteration count a server announces SHOULD be at least 4096. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
export const SALT_BYTES = 16;

/** Strict base64 (RFC 4648 §4), as SASL payloads (RFC 6120 §6.4.2) and SCRAM attributes use. */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const DIGESTS: Record<ScramMechanism, { algorithm: "sha1" | "sha256"; bytes: number }> = {
  "SCRAM-SHA-1": { algorithm: "sha1", bytes: 20 },
  "SCRAM-SHA-256": { algorithm: "sha256", bytes: 32 },
};

/**
 * SASLprep (RFC 4013) approximated by NFKC: it maps compatibility characters the same way but does
 * not map non-ASCII spaces or delete the "mapped to nothing" characters. Clients that send
 * ASCII passwords, which is nearly all of them, see no difference.
 */
export function prepPassword(password: string): string {
  return password.normalize("NFKC");
}

export function hmac(
  mechanism: ScramMechanism,
  key: Uint8Array,
  data: string | Uint8Array,
): Buffer {
  return createHmac(DIGESTS[mechanism].algorithm, key).update(data).digest();
}

export function hash(mechanism: ScramMechanism, data: Uint8Array): Buffer {
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

/** The same as saltedPassword, on libuv's thread pool: a login must not stall the event loop. */
export function saltedPasswordAsync(
  mechanism: ScramMechanism,
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Buffer> {
  const { algorithm, bytes } = DIGESTS[mechanism];
  return pbkdf2Async(prepPassword(password), salt, iterations, bytes, algorithm);
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

/** How a nonexistent user is made to look real, in SCRAM and in PLAIN. */
export interface StandInOptions {
  /**
   * Key for the stand-in salt shown for unknown users. The default is random per process; share a
   * key across session pods, or the salt of a missing user changes with the pod and gives it away.
   */
  unknownUserSaltKey?: Uint8Array;
  /** Iteration count shown for unknown users; set it to what real accounts use. */
  unknownUserIterations?: number;
}

export const PROCESS_SALT_KEY = randomBytes(32);

/** Same salt for the same unknown user every time, so probing twice does not reveal absence. */
export function standInSalt(mechanism: ScramMechanism, username: string, key: Uint8Array): Buffer {
  return createHmac("sha256", key)
    .update(`${mechanism}\0${username}`)
    .digest()
    .subarray(0, SALT_BYTES);
}

/** Keys no password produces, so unknown users go through the same verification steps. */
export const NO_USER: Record<ScramMechanism, ScramCredential> = {
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

export function malformed(text: string): SaslFailure {
  return new SaslFailure("malformed-request", text);
}

/**
 * RFC 6120 §6.3.8: the only identity a client may ask for is its own bare JID. An authzid that
 * names anyone else, or one we cannot check for lack of a domain, fails.
 */
export function checkAuthzid(authzid: string, username: string, domain: string | undefined): void {
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
