// OfflineStore in Redis: keys.offline is a list, oldest stanza at the head, keys.offlineBytes
// holds the sum of its stanzas' byte lengths, keys.offlineSenders the sender of each stanza
// (a list in step with the queue) and keys.offlinePerSender the count per sender. Push is a Lua
// script (every bound checked, append and counter updates together); takeAll is LRANGE and DEL
// of every key in one transaction, deleteUser one DEL (one hash tag, so one slot).
import type { Redis } from "../../redis/client.js";
import { UNTIMED, type CommandTimer } from "../../redis/command-timer.js";
import type { Keys } from "../../redis/keys.js";
import { execAll } from "../../redis/multi.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import {
  OFFLINE_ORIGIN_TTL_MS,
  type OfflineLimits,
  type OfflinePushResult,
  type OfflineStore,
} from "./offline-store.js";

export class RedisOfflineStore implements OfflineStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** Times the hot calls (megaphone_redis_command_duration_seconds). */
    private readonly timer: CommandTimer = UNTIMED,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async pushFrom(
    user: string,
    sender: string,
    stanza: string,
    limits: OfflineLimits,
    origin = "",
  ): Promise<OfflinePushResult> {
    const pushed = await this.timer.time("eval", () =>
      this.scripts.mpOfflinePush(
        ...this.queueKeys(user),
        this.keys.offlineOrigins(user),
        limits.maxMessages,
        limits.maxBytes,
        stanza,
        sender,
        limits.maxPerSender,
        origin,
        OFFLINE_ORIGIN_TTL_MS,
      ),
    );
    return pushed === 1 ? "stored" : pushed === 0 ? "full" : "sender-full";
  }

  /** Every key of one user's queue, in the order the scripts take them. */
  private queueKeys(user: string): [string, string, string, string] {
    return [
      this.keys.offline(user),
      this.keys.offlineBytes(user),
      this.keys.offlineSenders(user),
      this.keys.offlinePerSender(user),
    ];
  }

  async takeAll(user: string): Promise<string[]> {
    const [stanzas] = await execAll(
      this.redis
        .multi()
        .lrange(this.keys.offline(user), 0, -1)
        .del(...this.queueKeys(user)),
    );
    return stanzas as string[];
  }

  async peek(user: string): Promise<string[]> {
    // Read at every initial presence (XEP-0160).
    return this.timer.time("lrange", () => this.redis.lrange(this.keys.offline(user), 0, -1));
  }

  async removeDelivered(user: string, stanzas: string[]): Promise<number> {
    if (stanzas.length === 0) return 0;
    return this.scripts.mpOfflineRemoveDelivered(...this.queueKeys(user), ...stanzas);
  }

  async count(user: string): Promise<number> {
    return this.timer.time("llen", () => this.redis.llen(this.keys.offline(user)));
  }

  async deleteUser(user: string): Promise<void> {
    await this.redis.del(...this.queueKeys(user), this.keys.offlineOrigins(user));
  }
}
