// Which session member serves which shard (DESIGN.md, "Sharding and membership"): a member
// serves a shard only while it holds the shard's lease, so two processes never serve one shard
// at once. A lease expires unless renewed; each one carries a fencing token that every state
// write of its shard checks atomically (fenced-writes.ts), so a member paused past its lease
// cannot overwrite the new owner's state or acknowledge its entries. Implementations:
// MemoryShardLeases (all-in-one, tests) and RedisShardLeases. Not wired into the session yet:
// it still serves the shards it is told (--shards).

export interface Lease {
  readonly shard: number;
  readonly member: string;
  /**
   * Fencing token: increases with every acquisition of this shard and is never handed out
   * twice, across releases, expiries and restarts of the holders.
   */
  readonly token: number;
  /**
   * When the lease lapses unless renewed, on this process's clock (ms since the epoch). It is
   * measured from before the request was sent, so it never overstates how long the lease lasts;
   * the backing store's own clock decides the actual expiry.
   */
  readonly expiresAtMs: number;
}

export interface ShardLeases {
  /**
   * Takes the lease on `shard` for `memberId` with a new, higher fencing token. Resolves
   * undefined while any unexpired lease on the shard exists, including one held by the same
   * member id (a restarted process waits out its predecessor's lease rather than serve beside
   * it). Check and take are one atomic step: of two members racing, one wins.
   */
  acquire(shard: number, memberId: string): Promise<Lease | undefined>;

  /**
   * Extends the lease by the lease time from now. Resolves undefined when it was lost: it
   * expired (even if nobody took it yet) or was released; its holder must stop serving the
   * shard and acquire again.
   */
  renew(lease: Lease): Promise<Lease | undefined>;

  /**
   * Gives the lease up at once (planned handover), only if it is still this one: a lost lease,
   * maybe held by another member now, is left alone. Resolves whether it was released.
   */
  release(lease: Lease): Promise<boolean>;

  /** The live lease on `shard`, whoever holds it, or undefined when the shard is free. */
  holder(shard: number): Promise<Lease | undefined>;
}

export interface ShardLeasesOptions {
  /** How long a lease outlives its acquisition or last renewal (config: shardLeaseTtlMs). */
  ttlMs: number;
}
