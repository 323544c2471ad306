// SmQueueStore in Redis: keys.smQueue(shard, smId) is a hash of sequence number → stanza under
// the shard's hash tag. The caller knows which numbers exist (its counters), so reads and
// trims name their fields: one command each, no scan. keys.smSettled(shard, connId) is a
// plain key with an expiry. Writes are fenced by the shard's lease in a session process
// (shard-fence.ts): a member that lost the shard cannot overwrite its successor's queue.
import { ShardFence } from "../../leases/shard-fence.js";
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import { writeShardState } from "../../redis/fenced-call.js";
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
    private readonly fence = new ShardFence(),
  ) {}

  private write(
    shard: number,
    key: string,
    command: string,
    ...args: (string | number)[]
  ): Promise<void> {
    return writeShardState(this.redis, this.keys, this.fence, shard, key, command, ...args);
  }

  async push(shard: number, smId: string, seq: number, stanza: string): Promise<void> {
    await this.write(shard, this.keys.smQueue(shard, smId), "HSET", String(seq), stanza);
  }

  async range(shard: number, smId: string, from: number, to: number): Promise<string[]> {
    if (to < from) return [];
    const stanzas = await this.redis.hmget(this.keys.smQueue(shard, smId), ...seqs(from, to));
    return stanzas.filter((s): s is string => s !== null);
  }

  async drop(shard: number, smId: string, from: number, to: number): Promise<void> {
    if (to < from) return;
    await this.write(shard, this.keys.smQueue(shard, smId), "HDEL", ...seqs(from, to));
  }

  async delete(shard: number, smId: string): Promise<void> {
    await this.write(shard, this.keys.smQueue(shard, smId), "DEL");
  }

  async markSettled(shard: number, connId: string, ttlMs: number): Promise<void> {
    await this.write(shard, this.keys.smSettled(shard, connId), "SET", "1", "PX", ttlMs);
  }

  async isSettled(shard: number, connId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.smSettled(shard, connId))) === 1;
  }
}
