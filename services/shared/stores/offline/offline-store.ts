// Offline messages (RFC 6121 §8.5.2.2.1, XEP-0160): kept in arrival order, bounded per user
// both in count and in bytes, so one user's queue cannot grow without limit, and in count per
// sender, so no one sender can fill another user's queue.

/** The bounds a pushFrom must respect. */
export interface OfflineLimits {
  /** Most stanzas in the queue. */
  maxMessages: number;
  /** Most bytes (UTF-8 length of the stanzas as stored) in the queue. */
  maxBytes: number;
  /** Most stanzas of one sender in the queue. */
  maxPerSender: number;
}

/** How long a stored push's origin is remembered (repeats come within a lease time or two). */
export const OFFLINE_ORIGIN_TTL_MS = 10 * 60_000;

/** What pushFrom did: stored; refused by the queue's bounds; refused by the sender's bound. */
export type OfflinePushResult = "stored" | "full" | "sender-full";

export interface OfflineStore {
  /**
   * Appends a stanza (XML) for `user` from `sender` (a bare JID; "" for none, which no sender
   * bound counts) unless the queue would then hold more than `maxMessages` stanzas or more than
   * `maxBytes` bytes (UTF-8 length of the stanzas as stored) ("full"), or already holds
   * `maxPerSender` stanzas of that sender ("sender-full"); nothing changes when refused. The
   * queue's bounds are checked first. Atomic: every bound holds under concurrent pushes, and a sender's count is released as its stanzas leave the queue
   * (takeAll, removeDelivered, deleteUser).
   */
  pushFrom(
    user: string,
    sender: string,
    stanza: string,
    limits: OfflineLimits,
    /**
     * The push's origin (services/shared/bus/origin.ts): a push whose origin was stored for the
     * same user within OFFLINE_ORIGIN_TTL_MS (an entry applied twice) changes nothing and
     * answers "stored".
     */
    origin?: string,
  ): Promise<OfflinePushResult>;
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
