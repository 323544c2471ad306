// SnapshotStore in Redis: keys.snapshot(shard) is a hash connId → snapshot, under the
// shard's hash tag, so a taking-over member loads a whole shard with one HGETALL.
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import type { SnapshotStore } from "./snapshot-store.js";

export class RedisSnapshotStore implements SnapshotStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async save(shard: number, connId: string, snapshot: string): Promise<void> {
    await this.redis.hset(this.keys.snapshot(shard), connId, snapshot);
  }

  async saveMany(shard: number, snapshots: ReadonlyMap<string, string>): Promise<void> {
    if (snapshots.size === 0) return;
    await this.redis.hset(this.keys.snapshot(shard), snapshots as Map<string, string>);
  }

  async delete(shard: number, connId: string): Promise<void> {
    await this.redis.hdel(this.keys.snapshot(shard), connId);
  }

  async loadShard(shard: number): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.keys.snapshot(shard))));
  }
}
