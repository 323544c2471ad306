// RFC 4616 PLAIN, server side. The password is checked by deriving the SCRAM-SHA-256
// StoredKey from it with the stored salt, so no password is ever stored (RFC 6120 §6).
import { timingSafeEqual } from "node:crypto";
import type { Account, ScramCredential } from "../../shared/stores/account/account-store.js";
import {
  checkAuthzid,
  DEFAULT_SCRAM_ITERATIONS,
  hash,
  hmac,
  malformed,
  NO_USER,
  PROCESS_SALT_KEY,
  saltedPasswordAsync,
  standInSalt,
  type StandInOptions,
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

/** PBKDF2 runs on libuv's thread pool, 4 threads unless UV_THREADPOOL_SIZE says otherwise. */
export const MAX_CONCURRENT_PLAIN_DERIVATIONS = 4;
let derivationsInFlight = 0;

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
  // Each attempt costs a full PBKDF2; past the thread pool's size more would only queue and
  // let a login storm stall every other connection's work, so the client is asked to retry.
  if (derivationsInFlight >= MAX_CONCURRENT_PLAIN_DERIVATIONS)
    throw new SaslFailure("temporary-auth-failure", "the server is busy; try again");
  derivationsInFlight++;
  let salted: Buffer;
  try {
    salted = await saltedPasswordAsync("SCRAM-SHA-256", credentials.password, salt, iterations);
  } finally {
    derivationsInFlight--;
  }
  const candidate = hash("SCRAM-SHA-256", hmac("SCRAM-SHA-256", salted, "Client Key"));
  return plainOutcome(credentials.authcid, stored, candidate);
}
