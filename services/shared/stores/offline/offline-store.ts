// Offline messages (RFC 6121 §8.5.2.2.1, XEP-0160): kept in arrival order, bounded per user
// both in count and in bytes, so one user's queue cannot grow without limit.

export interface OfflineStore {
  /**
   * Appends a stanza (XML) for `user` unless the queue would then hold more than
   * `maxMessages` stanzas or more than `maxBytes` bytes (UTF-8 length of the stanzas as
   * stored); false, and no change, when refused. Atomic: the bounds hold under concurrent
   * pushes.
   */
  push(user: string, stanza: string, maxMessages: number, maxBytes: number): Promise<boolean>;
  /**
   * Removes and returns every queued stanza, oldest first, and releases their bytes. Atomic:
   * nothing is returned twice.
   */
  takeAll(user: string): Promise<string[]>;
  /** Every queued stanza, oldest first, without removing any. */
  peek(user: string): Promise<string[]>;
  /**
   * Removes `stanzas` from the head of the queue, as far as the head still holds them in that
   * order (a concurrent delivery may have taken them already), and releases their bytes.
   * Returns how many were removed. Atomic. Used to remove messages only once their delivery
   * is stored, so a failure in between redelivers them instead of losing them.
   */
  removeDelivered(user: string, stanzas: string[]): Promise<number>;
  count(user: string): Promise<number>;
  /** Removes the queue and its byte count. Atomic. */
  deleteUser(user: string): Promise<void>;
}
