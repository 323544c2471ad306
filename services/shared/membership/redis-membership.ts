// Session members in Redis: one sorted set of member id → expiry, kept on the Redis server's
// clock (MEMBERSHIP_HEARTBEAT reads TIME), so skewed process clocks cannot expire a live member
// or keep a dead one. Each heartbeat renews, prunes the expired and reads the live set in one
// script call: one round trip per member per heartbeat interval, whatever the mesh size.
import type { Logger } from "../log.js";
import type { Redis } from "../redis/client.js";
import type { Keys } from "../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../redis/script-commands.js";
import { HeartbeatMembership } from "./heartbeat-membership.js";
import type { MembershipOptions } from "./membership.js";

export class RedisMembership extends HeartbeatMembership {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    options: MembershipOptions,
    log: Logger,
  ) {
    super(options, log);
    this.scripts = scriptCommands(redis);
  }

  protected renew(memberId: string): Promise<string[]> {
    return this.scripts.mpMembershipHeartbeat(this.keys.members(), memberId, this.options.ttlMs);
  }

  protected async remove(memberId: string): Promise<void> {
    await this.redis.zrem(this.keys.members(), memberId);
  }
}
