// SmQueueStore in Redis: keys.smQueue(shard, smId) is a hash of sequence number → stanza under
// the shard's hash tag. The caller knows which numbers exist (its counters), so reads and
// trims name their fields: one command each, no scan. keys.smSettled(shard, connId) is a
// plain key with an expiry.
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import type { SmQueueStore } from "./sm-queue-store.js";

function seqs(from: number, to: number): string[] {
  const fields: string[] = [];
  for (let seq = from; seq <= to; seq++) fields.push(String(seq));
  return fields;
}

export class RedisSmQueueStore implements SmQueueStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async push(shard: number, smId: string, seq: number, stanza: string): Promise<void> {
    await this.redis.hset(this.keys.smQueue(shard, smId), String(seq), stanza);
  }

  async range(shard: number, smId: string, from: number, to: number): Promise<string[]> {
    if (to < from) return [];
    const stanzas = await this.redis.hmget(this.keys.smQueue(shard, smId), ...seqs(from, to));
    return stanzas.filter((s): s is string => s !== null);
  }

  async drop(shard: number, smId: string, from: number, to: number): Promise<void> {
    if (to < from) return;
    await this.redis.hdel(this.keys.smQueue(shard, smId), ...seqs(from, to));
  }

  async delete(shard: number, smId: string): Promise<void> {
    await this.redis.del(this.keys.smQueue(shard, smId));
  }

  async markSettled(shard: number, connId: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.keys.smSettled(shard, connId), "1", "PX", ttlMs);
  }

  async isSettled(shard: number, connId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.smSettled(shard, connId))) === 1;
  }
}
