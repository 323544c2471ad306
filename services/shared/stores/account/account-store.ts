// Accounts: SCRAM credentials per user (RFC 5802, RFC 7677). The password itself is never
// stored; PLAIN logins are checked by deriving the SCRAM-SHA-256 keys from the offered password.

export type ScramMechanism = "SCRAM-SHA-1" | "SCRAM-SHA-256";

export interface ScramCredential {
  /** base64 salt, unique per user and mechanism. */
  salt: string;
  iterations: number;
  /** base64 H(ClientKey). */
  storedKey: string;
  /** base64 HMAC(SaltedPassword, "Server Key"). */
  serverKey: string;
}

export interface Account {
  scram: Record<ScramMechanism, ScramCredential>;
  /** ms since epoch. */
  createdAt: number;
}

export interface AccountStore {
  /** The account of a bare JID, or undefined. */
  get(bareJid: string): Promise<Account | undefined>;
  /** Creates an account; false (and no change) if one exists. Atomic. */
  create(bareJid: string, account: Account): Promise<boolean>;
  /** Replaces an existing account's credentials; false if there is no such account. Atomic. */
  update(bareJid: string, account: Account): Promise<boolean>;
  /** Deletes the account; false if there was none. Does not touch the roster or offline queue. */
  delete(bareJid: string): Promise<boolean>;
  /**
   * The secret that SCRAM stand-in salts of nonexistent users derive from (32 bytes): created
   * by the first caller, then the same for every caller of every process sharing this store,
   * across restarts, for as long as the store keeps its data. A salt that differed between
   * processes or restarts would tell a missing user from a real one, whose salt is stored.
   */
  standInKey(): Promise<Uint8Array>;
}

/** Bytes of the stand-in key. */
export const STAND_IN_KEY_BYTES = 32;
