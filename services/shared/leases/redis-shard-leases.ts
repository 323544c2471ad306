// ShardLeases in Redis: keys.shardLease(shard) is a hash {member, token} with a PX expiry, so
// Redis' clock alone decides when a lease lapses; keys.shardLeaseToken(shard) is the token
// counter, which never expires. Both are under the shard's hash tag {s<N>}, with the shard's
// inbox and snapshots, so the fenced scripts (RedisFencedWrites) stay in one Cluster slot.
import type { Redis } from "../redis/client.js";
import type { Keys } from "../redis/keys.js";
import { execAll } from "../redis/multi.js";
import { scriptCommands, type ScriptCommands } from "../redis/script-commands.js";
import type { Lease, ShardLeases, ShardLeasesOptions } from "./shard-leases.js";

export class RedisShardLeases implements ShardLeases {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: ShardLeasesOptions,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async acquire(shard: number, memberId: string): Promise<Lease | undefined> {
    const sentAt = Date.now();
    const token = await this.scripts.mpShardLeaseAcquire(
      this.keys.shardLease(shard),
      this.keys.shardLeaseToken(shard),
      memberId,
      this.options.ttlMs,
    );
    if (token === 0) return undefined;
    return {
      shard,
      member: memberId,
      token: Number(token),
      expiresAtMs: sentAt + this.options.ttlMs,
    };
  }

  async renew(lease: Lease): Promise<Lease | undefined> {
    const sentAt = Date.now();
    const renewed = await this.scripts.mpShardLeaseRenew(
      this.keys.shardLease(lease.shard),
      String(lease.token),
      this.options.ttlMs,
    );
    return renewed === 1 ? { ...lease, expiresAtMs: sentAt + this.options.ttlMs } : undefined;
  }

  async release(lease: Lease): Promise<boolean> {
    const released = await this.scripts.mpShardLeaseRelease(
      this.keys.shardLease(lease.shard),
      String(lease.token),
    );
    return released === 1;
  }

  async holder(shard: number): Promise<Lease | undefined> {
    const key = this.keys.shardLease(shard);
    const sentAt = Date.now();
    const [fields, ttlMs] = (await execAll(this.redis.multi().hgetall(key).pttl(key))) as [
      Record<string, string>,
      number,
    ];
    // PTTL is -2 for a missing key; a lease always has an expiry, so -1 cannot happen.
    if (fields.member === undefined || fields.token === undefined || ttlMs < 0) return undefined;
    return {
      shard,
      member: fields.member,
      token: Number(fields.token),
      expiresAtMs: sentAt + ttlMs,
    };
  }
}
