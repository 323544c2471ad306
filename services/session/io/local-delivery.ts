// When a stanza for a connection of a shard this member serves may skip that shard's inbox and
// be delivered at once (local delivery), without overtaking an earlier stanza for the same
// connection that is still in the inbox (RFC 6121 §8 per-recipient order). An earlier stanza
// can be there because:
// - this member routed it through the inbox (it did not serve the shard, or local delivery was
//   not allowed yet): allowed again once the inbox is handled past that entry's id;
// - another member wrote it before this member took one of its shards over (the sender's
//   connection moved here): every shard served is barred from local delivery until its inbox
//   is handled past the end it had when the last shard was taken.
// Ids are stream entry ids, compared as such, so no clocks are involved.
import { compareEntryIds } from "../../shared/bus/packets.js";

export class LocalDelivery {
  /** Shards served: their leases held and their read loops running. */
  private readonly served = new Set<number>();
  /** The last entry id handled, with everything before it, per served shard. */
  private readonly handledUpTo = new Map<number, string>();
  /** The id local delivery waits for per shard: the later of the barrier and our routes. */
  private readonly waitFor = new Map<number, string>();
  /** Routes through a shard inbox not yet stored (their ids unknown yet). */
  private readonly routesInFlight = new Map<number, number>();

  /** Whether a stanza for a connection of `shard` may be delivered without its inbox. */
  allows(shard: number): boolean {
    if (!this.served.has(shard) || (this.routesInFlight.get(shard) ?? 0) > 0) return false;
    const handled = this.handledUpTo.get(shard);
    const needed = this.waitFor.get(shard) ?? "0-0";
    return handled !== undefined && compareEntryIds(handled, needed) >= 0;
  }

  /**
   * A shard starts being served. `ends` are the inbox ends of every served shard (this one
   * included), read after its lease was taken: stanzas its previous owner routed to any of
   * them are at or below those ends.
   */
  started(shard: number, ends: ReadonlyMap<number, string>): void {
    this.served.add(shard);
    for (const [s, end] of ends) this.raise(s, end);
  }

  stopped(shard: number): void {
    this.served.delete(shard);
    this.handledUpTo.delete(shard);
    this.waitFor.delete(shard);
  }

  /** Whether this member serves `shard` (its stanzas never skip to its edges from here). */
  serves(shard: number): boolean {
    return this.served.has(shard);
  }

  /** Shards served now (for reading every inbox end when another one is taken). */
  servedShards(): number[] {
    return [...this.served];
  }

  /** Everything up to `lastId` in `shard`'s inbox has been handled (ShardConsumeOptions.onHandled). */
  handled(shard: number, lastId: string): void {
    const before = this.handledUpTo.get(shard);
    if (before === undefined || compareEntryIds(lastId, before) > 0)
      this.handledUpTo.set(shard, lastId);
  }

  /** Tracks a route written to `shard`'s inbox: local delivery waits until it is handled. */
  async viaInbox(shard: number, write: () => Promise<string>): Promise<void> {
    this.routesInFlight.set(shard, (this.routesInFlight.get(shard) ?? 0) + 1);
    try {
      const id = await write();
      if (this.served.has(shard)) this.raise(shard, id);
    } finally {
      const left = (this.routesInFlight.get(shard) ?? 1) - 1;
      if (left > 0) this.routesInFlight.set(shard, left);
      else this.routesInFlight.delete(shard);
    }
  }

  private raise(shard: number, id: string): void {
    const before = this.waitFor.get(shard);
    if (before === undefined || compareEntryIds(id, before) > 0) this.waitFor.set(shard, id);
  }
}
