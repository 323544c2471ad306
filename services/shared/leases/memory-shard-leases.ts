// ShardLeases in process memory (all-in-one mode and tests), on this process's clock. Tokens
// are per shard and only increase for the life of the object.
import { FencedError } from "./fenced-error.js";
import type { Lease, ShardLeases, ShardLeasesOptions } from "./shard-leases.js";

export class MemoryShardLeases implements ShardLeases {
  private readonly live = new Map<number, Lease>();
  private readonly lastToken = new Map<number, number>();

  constructor(private readonly options: ShardLeasesOptions) {}

  async acquire(shard: number, memberId: string): Promise<Lease | undefined> {
    if (this.current(shard)) return undefined;
    const token = (this.lastToken.get(shard) ?? 0) + 1;
    this.lastToken.set(shard, token);
    const lease = { shard, member: memberId, token, expiresAtMs: this.expiry() };
    this.live.set(shard, lease);
    return { ...lease };
  }

  async renew(lease: Lease): Promise<Lease | undefined> {
    if (this.current(lease.shard)?.token !== lease.token) return undefined;
    const renewed = { ...lease, expiresAtMs: this.expiry() };
    this.live.set(lease.shard, renewed);
    return { ...renewed };
  }

  async release(lease: Lease): Promise<boolean> {
    if (this.current(lease.shard)?.token !== lease.token) return false;
    this.live.delete(lease.shard);
    return true;
  }

  async holder(shard: number): Promise<Lease | undefined> {
    const lease = this.current(shard);
    return lease && { ...lease };
  }

  /**
   * The fencing check of MemoryFencedWrites: throws FencedError unless `lease` is the shard's
   * live lease. Synchronous, so a caller that writes synchronously right after it does both in
   * one step.
   */
  fence(lease: Lease): void {
    const live = this.current(lease.shard);
    if (live?.token !== lease.token) throw new FencedError(lease.shard, lease.token, live?.token);
  }

  private current(shard: number): Lease | undefined {
    const lease = this.live.get(shard);
    if (lease && lease.expiresAtMs <= Date.now()) {
      this.live.delete(shard);
      return undefined;
    }
    return lease;
  }

  private expiry(): number {
    return Date.now() + this.options.ttlMs;
  }
}
