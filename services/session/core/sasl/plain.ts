// RFC 4616 PLAIN, server side. The password is checked by deriving the SCRAM-SHA-256
// StoredKey from it with the stored salt, so no password is ever stored (RFC 6120 §6).
import { timingSafeEqual } from "node:crypto";
import { BoundedFifo } from "../../../shared/async/bounded-fifo.js";
import { threadPoolSize } from "../../../shared/config-parse.js";
import type { ScramCredential } from "../../../shared/stores/account/account-store.js";
import {
  checkAuthzid,
  hash,
  hmac,
  malformed,
  NO_USER,
  saltedPasswordAsync,
  standInSalt,
  type AccountLookup,
} from "./sasl-credentials.js";
import { SaslFailure } from "./sasl-failure.js";

/** RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets. */
const PLAIN_MAX_FIELD_BYTES = 255;

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
 * Each PLAIN attempt costs a full PBKDF2 on libuv's thread pool, which runs threadPoolSize()
 * of them at once: more would only share the same threads and slow every one (and the pool's
 * other users, DNS and file I/O). So derivations wait in line, first come first served, and
 * only a login arriving when the line is full is asked to come back later.
 */
export const plainDerivations = new BoundedFifo(threadPoolSize());

/** What PLAIN compares against: the stored SHA-256 key, or a stand-in that costs the same. */
function plainTarget(authcid: string, domain: string, { account, standIn }: AccountLookup) {
  const stored = account?.scram["SCRAM-SHA-256"];
  const salt = stored
    ? Buffer.from(stored.salt, "base64")
    : standInSalt("SCRAM-SHA-256", authcid, domain, standIn.saltKey);
  const iterations = stored?.iterations ?? standIn.iterations;
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

export interface PlainOptions {
  /** The account of a SASL username (not yet normalized), and the stand-in if it has none. */
  lookup: (username: string) => Promise<AccountLookup>;
  /** The served domain: it normalizes the username, and an authzid must name it (§6.3.8). */
  domain: string;
  /** Logins that may wait for a derivation; past it temporary-auth-failure. */
  queueMaxLogins: number;
}

/**
 * Checks a PLAIN message; returns the SASL username it authenticates. Throws SaslFailure:
 * not-authorized (wrong password, unknown user), malformed-request, invalid-authzid, and
 * temporary-auth-failure when more than `queueMaxLogins` logins already wait.
 */
export async function plainVerify(
  message: Uint8Array | string,
  options: PlainOptions,
): Promise<string> {
  const credentials = parsePlain(message);
  checkAuthzid(credentials.authzid, credentials.authcid, options.domain);
  const { stored, salt, iterations } = plainTarget(
    credentials.authcid,
    options.domain,
    await options.lookup(credentials.authcid),
  );
  const deriving = plainDerivations.tryRun(
    () => saltedPasswordAsync("SCRAM-SHA-256", credentials.password, salt, iterations),
    options.queueMaxLogins,
  );
  if (!deriving) throw new SaslFailure("temporary-auth-failure", "the server is busy; try again");
  const candidate = hash("SCRAM-SHA-256", hmac("SCRAM-SHA-256", await deriving, "Client Key"));
  return plainOutcome(credentials.authcid, stored, candidate);
}
