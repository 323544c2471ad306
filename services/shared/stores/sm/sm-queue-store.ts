// Stream management (XEP-0198) state that must outlive the process serving a session: the
// stanzas sent to the client and not yet acknowledged, by sequence number, and the
// connections whose unacked stanzas were settled by the session itself. Kept under the shard's
// hash tag, so whichever member owns the shard next finds them (the counters that say which
// sequence numbers exist live in the connection's snapshot).

/**
 * A stanza to keep for a stream management session until the client acknowledges it, stored
 * with its connection's snapshot (FencedWrites) instead of by push().
 */
export interface UnackedStanza {
  smId: string;
  seq: number;
  stanza: string;
}

export interface SmQueueStore {
  /**
   * Stores stanza number `seq` of stream management session `smId`. Idempotent: storing a
   * number again replaces it (a unit of work that is retried pushes the same numbers again).
   */
  push(shard: number, smId: string, seq: number, stanza: string): Promise<void>;
  /**
   * The stanzas numbered `from` to `to` (inclusive), in order; a number never stored (or
   * dropped) is left out. Reads at most `to - from + 1` entries.
   */
  range(shard: number, smId: string, from: number, to: number): Promise<string[]>;
  /** Forgets the stanzas numbered `from` to `to` (inclusive): the client acknowledged them. */
  drop(shard: number, smId: string, from: number, to: number): Promise<void>;
  /** Forgets every stanza of the session (it ended or moved its state elsewhere). */
  delete(shard: number, smId: string): Promise<void>;
  /**
   * Remembers for `ttlMs` that connection `connId` no longer exists and that the session saw to
   * every stanza sent to it after stream management was enabled: a copy that comes back later as
   * undelivered (from an edge, or a dead edge's inbox) must be dropped, not rerouted again.
   */
  markSettled(shard: number, connId: string, ttlMs: number): Promise<void>;
  /** Whether markSettled was called for `connId` less than its ttl ago. */
  isSettled(shard: number, connId: string): Promise<boolean>;
}
