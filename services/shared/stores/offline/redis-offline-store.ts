// OfflineStore in Redis: keys.offline is a list, oldest stanza at the head, and
// keys.offlineBytes holds the sum of its stanzas' byte lengths. Push is a Lua script (both
// bounds checked, append and counter update together); takeAll is LRANGE and DEL of both
// keys in one transaction, deleteUser one DEL of both (one hash tag, so one slot).
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import { execAll } from "../../redis/multi.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import type { OfflineStore } from "./offline-store.js";

export class RedisOfflineStore implements OfflineStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async push(
    user: string,
    stanza: string,
    maxMessages: number,
    maxBytes: number,
  ): Promise<boolean> {
    const pushed = await this.scripts.mpOfflinePush(
      this.keys.offline(user),
      this.keys.offlineBytes(user),
      maxMessages,
      maxBytes,
      stanza,
    );
    return pushed === 1;
  }

  async takeAll(user: string): Promise<string[]> {
    const key = this.keys.offline(user);
    const [stanzas] = await execAll(
      this.redis.multi().lrange(key, 0, -1).del(key, this.keys.offlineBytes(user)),
    );
    return stanzas as string[];
  }

  async peek(user: string): Promise<string[]> {
    return this.redis.lrange(this.keys.offline(user), 0, -1);
  }

  async removeDelivered(user: string, stanzas: string[]): Promise<number> {
    if (stanzas.length === 0) return 0;
    return this.scripts.mpOfflineRemoveDelivered(
      this.keys.offline(user),
      this.keys.offlineBytes(user),
      ...stanzas,
    );
  }

  async count(user: string): Promise<number> {
    return this.redis.llen(this.keys.offline(user));
  }

  async deleteUser(user: string): Promise<void> {
    await this.redis.del(this.keys.offline(user), this.keys.offlineBytes(user));
  }
}
