// Offline messages (RFC 6121 §8.5.2.2.1, XEP-0160): kept in arrival order, bounded per user.

export interface OfflineStore {
  /**
   * Appends a stanza (XML) for `user` unless `max` are already queued; false when full. Atomic.
   */
  push(user: string, stanza: string, max: number): Promise<boolean>;
  /** Removes and returns every queued stanza, oldest first. Atomic: nothing is returned twice. */
  takeAll(user: string): Promise<string[]>;
  count(user: string): Promise<number>;
  deleteUser(user: string): Promise<void>;
}
