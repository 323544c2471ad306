// The crash window of a stanza one connection's unit sends another on the same session member
// (session-bosh-durability, session-sm-durability): the sender's snapshot, which marks his
// entries applied, is stored; the recipient's state is not (its shard's snapshots are refused
// by ACL); then the member dies. Whatever the recipient should get must be found by the next
// owner all the same.
import type { Redis } from "ioredis";
import { compareEntryIds } from "../../services/shared/bus/packets.js";
import type { Keys } from "../../services/shared/redis/keys.js";
import { until } from "./poll.js";
import { acknowledgedUpTo, restoreDefault, revokeKeyFromDefault } from "./redis-admin.js";
import type { SessionHarness } from "./session-harness.js";

/**
 * With `recipientShard`'s snapshots refused, sends `frames` from `sender` (whose units store
 * snapshots: XEP-0198 enabled), waits until the sender's snapshot is past the last of them, and
 * stops the member. Restores Redis's permissions whatever happens.
 */
export async function stopAfterSendersSnapshot(
  h: SessionHarness,
  admin: Redis,
  keys: Keys,
  {
    sender,
    senderShard,
    recipientShard,
    frames,
  }: {
    sender: string;
    senderShard: number;
    recipientShard: number;
    frames: string[];
  },
): Promise<void> {
  await revokeKeyFromDefault(admin, keys.snapshot(recipientShard));
  try {
    let last = "";
    for (const frame of frames) last = await h.send(sender, frame);
    await until(async () => {
      const stored = JSON.parse((await admin.hget(keys.snapshot(senderShard), sender)) ?? "{}") as {
        lastEntryId?: string;
      };
      return compareEntryIds(stored.lastEntryId ?? "0-0", last) >= 0;
    }, "the sender's snapshot past his last frame");
    await h.stopSession();
  } finally {
    await restoreDefault(admin);
  }
}

/** Whether `entryId` of `key` waits for the group: not read yet, or read and pending. */
export async function unacknowledged(admin: Redis, key: string, entryId: string): Promise<boolean> {
  const pending = (await admin.xpending(key, "session", entryId, entryId, 1)) as unknown[];
  return pending.length > 0 || !(await acknowledgedUpTo(admin, key, entryId));
}
