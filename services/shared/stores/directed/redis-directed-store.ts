// DirectedPresenceStore in Redis: keys.directed(shard, connId) is a set of recipient JIDs
// under the shard's hash tag. Add is a Lua script (membership, both bounds and the SADD must
// not interleave with other adds); the byte sum is computed from the set, which the bound
// keeps small, so no counter can drift. Writes are fenced by the shard's lease in a session
// process (shard-fence.ts).
import { ShardFence } from "../../leases/shard-fence.js";
import type { Redis } from "../../redis/client.js";
import { writeShardState } from "../../redis/fenced-call.js";
import type { Keys } from "../../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import type { DirectedAddResult, DirectedPresenceStore } from "./directed-store.js";

export class RedisDirectedPresenceStore implements DirectedPresenceStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly fence = new ShardFence(),
  ) {
    this.scripts = scriptCommands(redis);
  }

  async add(
    shard: number,
    connId: string,
    jid: string,
    maxRecipients: number,
    maxBytes: number,
  ): Promise<DirectedAddResult> {
    const token = this.fence.token(shard);
    let added: -1 | 0 | 1;
    try {
      added = await this.scripts.mpDirectedAdd(
        this.keys.directed(shard, connId),
        this.keys.shardLease(shard),
        jid,
        maxRecipients,
        maxBytes,
        token ?? "",
      );
    } catch (err) {
      throw token === undefined ? err : ShardFence.refusal(err, shard, token);
    }
    return added === 1 ? "added" : added === 0 ? "present" : "full";
  }

  async remove(shard: number, connId: string, jids: string[]): Promise<void> {
    if (jids.length === 0) return;
    const key = this.keys.directed(shard, connId);
    await writeShardState(this.redis, this.keys, this.fence, shard, key, "SREM", ...jids);
  }

  async list(shard: number, connId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.directed(shard, connId));
  }
}
