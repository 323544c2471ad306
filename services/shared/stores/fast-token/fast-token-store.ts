// XEP-0484 (FAST) tokens that must outlive a connection: per user and per client installation
// (the SASL2 <user-agent id>), in two slots as the XEP's implementation notes suggest: `fresh`
// (issued, not yet used) and `current` (the one last used). Only a hash of each token is kept
// (see core/sasl/fast.ts for what that hash is and what it protects).

export interface FastToken {
  /** base64 SHA-256 of the token: the key HT mechanisms are checked with. */
  hash: string;
  /** The mechanism the token was issued for; it is refused with any other (XEP-0484 §4.4). */
  mechanism: string;
  /** ms since epoch; from then on the token is refused. */
  expiresAtMs: number;
  /** The highest <fast count> accepted with this token (0 for none): a count must exceed it. */
  count: number;
}

export interface FastTokenStore {
  /**
   * The tokens of (`bareJid`, `agentId`): the fresh one first, then the current one; expired
   * ones may be included (use() refuses them).
   */
  get(bareJid: string, agentId: string): Promise<FastToken[]>;
  /**
   * Puts `token` in the fresh slot, replacing a fresh token never used (XEP-0484 §4.5: tokens
   * issued and not used are invalidated by a newer one); the current one stays until the new
   * one is used. Everything the pair holds expires with its latest token.
   */
  issue(bareJid: string, agentId: string, token: FastToken): Promise<void>;
  /**
   * Accepts the token with `hash` once, atomically: refused (false) if neither slot holds it,
   * if it has expired at `nowMs`, or if `count` is given and not above the highest count
   * accepted for it (a replay). Accepting the fresh token makes it current and drops the token
   * that was current (it expires earlier); accepting the current one keeps the fresh one.
   */
  use(
    bareJid: string,
    agentId: string,
    hash: string,
    nowMs: number,
    count?: number,
  ): Promise<boolean>;
  /** Removes the token with `hash` from whichever slot holds it; false if none does. */
  invalidate(bareJid: string, agentId: string, hash: string): Promise<boolean>;
}
