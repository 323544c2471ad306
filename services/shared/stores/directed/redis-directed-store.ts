// DirectedPresenceStore in Redis: keys.directed(shard, connId) is a set of recipient JIDs
// under the shard's hash tag. Add is a Lua script (membership, both bounds and the SADD must
// not interleave with other adds); the byte sum is computed from the set, which the bound
// keeps small, so no counter can drift.
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import type { DirectedAddResult, DirectedPresenceStore } from "./directed-store.js";

export class RedisDirectedPresenceStore implements DirectedPresenceStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
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
    const added = await this.scripts.mpDirectedAdd(
      this.keys.directed(shard, connId),
      jid,
      maxRecipients,
      maxBytes,
    );
    return added === 1 ? "added" : added === 0 ? "present" : "full";
  }

  async remove(shard: number, connId: string, jids: string[]): Promise<void> {
    if (jids.length === 0) return;
    await this.redis.srem(this.keys.directed(shard, connId), ...jids);
  }

  async list(shard: number, connId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.directed(shard, connId));
  }
}
