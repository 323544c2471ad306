// Directed-presence recipients of each connection (RFC 6121 §4.6.2): the entities that got
// available presence from a connection without being subscribed to it, and must get its
// unavailable presence later. Kept apart from the connection's snapshot, which is written on
// every batch that touches the connection: this list changes only when directed presence is
// sent, and is read only when the connection becomes unavailable. Keyed by shard and
// connection id (the connection's own shard, so one shard's keys stay in one slot).

/** What add did: added; already there (nothing changed); refused by a bound. */
export type DirectedAddResult = "added" | "present" | "full";

export interface DirectedPresenceStore {
  /**
   * Adds `jid` to the connection's recipients unless it is there already; refused ("full"),
   * with no change, when the connection would then have more than `maxRecipients` recipients
   * or their JIDs more than `maxBytes` bytes (sum of UTF-8 lengths). Atomic: the bounds hold
   * under concurrent adds.
   */
  add(
    shard: number,
    connId: string,
    jid: string,
    maxRecipients: number,
    maxBytes: number,
  ): Promise<DirectedAddResult>;
  /** Removes these recipients (absent ones are ignored); nothing is left once all are gone. */
  remove(shard: number, connId: string, jids: string[]): Promise<void>;
  /** The connection's recipients (any order). */
  list(shard: number, connId: string): Promise<string[]>;
}
