// SASL credentials (RFC 5802 §3): deriving the stored SCRAM keys from a password, the
// primitives both SCRAM and PLAIN verification use, and the stand-ins that make a
// nonexistent user cost and look the same as a real one.
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { jid, parseJid } from "../../../shared/jid.js";
import type {
  Account,
  ScramCredential,
  ScramMechanism,
} from "../../../shared/stores/account/account-store.js";
import { SaslFailure } from "./sasl-failure.js";

const pbkdf2Async = promisify(pbkdf2);

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
export interface StandIn {
  /**
   * Secret the stand-in salts derive from: the same in every session process and across
   * restarts (AccountStore.standInKey, or the scramStandInKey setting), or a missing user's
   * salt would change where a real user's does not.
   */
  saltKey: Uint8Array;
  /** Iteration count shown and spent for unknown users: what real accounts get. */
  iterations: number;
}

/** What a SASL username is checked against: its account, or the stand-in if there is none. */
export interface AccountLookup {
  account: Account | undefined;
  standIn: StandIn;
}

/**
 * The bare JID a SASL username (a localpart) names on `domain`, normalized as every lookup
 * normalizes it, or undefined if it is not a valid localpart.
 */
export function accountJid(username: string, domain: string): string | undefined {
  try {
    const parsed = parseJid(`${username}@${domain}`);
    return parsed.resource ? undefined : parsed.bareString();
  } catch {
    return undefined;
  }
}

/**
 * The salt shown for a user that does not exist: the same every time for every spelling that
 * names one account (n=bob and n=BOB), as the stored salt of a real user is. A username that
 * is no valid localpart can name no account; it gets a salt of its own, just as stable.
 */
export function standInSalt(
  mechanism: ScramMechanism,
  username: string,
  domain: string,
  key: Uint8Array,
): Buffer {
  const bare = accountJid(username, domain);
  // NUL cannot occur in a SASL username, so the two kinds of name never meet.
  const name = bare === undefined ? `invalid\0${username}` : `jid\0${bare}`;
  return createHmac("sha256", key).update(`${mechanism}\0${name}`).digest().subarray(0, SALT_BYTES);
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
    // Never shown: an unknown user is shown StandIn.iterations.
    iterations: 1,
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
