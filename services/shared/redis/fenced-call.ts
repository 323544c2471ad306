// One write of shard state, fenced by the shard's lease when this process fences
// (shard-fence.ts): FENCED_CALL checks the token and runs the command in one step; otherwise
// the command runs as it is.
import { ShardFence } from "../leases/shard-fence.js";
import type { Redis } from "./client.js";
import type { Keys } from "./keys.js";
import { scriptCommands } from "./script-commands.js";

export async function writeShardState(
  redis: Redis,
  keys: Keys,
  fence: ShardFence,
  shard: number,
  key: string,
  command: string,
  ...args: (string | number)[]
): Promise<void> {
  const token = fence.token(shard);
  if (token === undefined) {
    await redis.call(command, key, ...args);
    return;
  }
  try {
    await scriptCommands(redis).mpFencedCall(keys.shardLease(shard), key, token, command, ...args);
  } catch (err) {
    throw ShardFence.refusal(err, shard, token);
  }
}
