// The crash window of a stanza one connection's unit sends another on the same session member
// (session-bosh-durability, session-sm-durability): the recipient's state cannot be stored (its
// shard's snapshots are refused by ACL), and the member dies. For a BOSH recipient the sender's
// snapshot, which marks his entries applied, is stored first (the stanza waits in the
// recipient's inbox); an XEP-0198 recipient's turn is held by the sender's unit, which stores
// nothing of its own until the recipient is saved (LiveContext.holdForDelivery). Whatever the
// recipient should get must be found by the next owner all the same.
import type { Redis } from "ioredis";
import { compareEntryIds } from "../../services/shared/bus/packets.js";
import type { Keys } from "../../services/shared/redis/keys.js";
import { until } from "./poll.js";
import { acknowledgedUpTo, restoreDefault, revokeKeyFromDefault } from "./redis-admin.js";
import type { SessionHarness } from "./session-harness.js";

/** Whether `sender`'s stored snapshot is past entry `last` (his entries up to it applied). */
export async function sendersSnapshotPast(
  admin: Redis,
  keys: Keys,
  sender: string,
  senderShard: number,
  last: string,
): Promise<boolean> {
  const stored = JSON.parse((await admin.hget(keys.snapshot(senderShard), sender)) ?? "{}") as {
    lastEntryId?: string;
  };
  return compareEntryIds(stored.lastEntryId ?? "0-0", last) >= 0;
}

/**
 * With `recipientShard`'s snapshots refused, sends `frames` from `sender` (whose units store
 * snapshots: XEP-0198 enabled), waits until `stopWhen` holds (by default: the sender's snapshot
 * is past the last of them), and stops the member. Restores Redis's permissions whatever
 * happens. Resolves the ids of the sender's entries.
 */
export async function stopWithRecipientRefused(
  h: SessionHarness,
  admin: Redis,
  keys: Keys,
  {
    sender,
    senderShard,
    recipientShard,
    frames,
    stopWhen,
  }: {
    sender: string;
    senderShard: number;
    recipientShard: number;
    frames: string[];
    stopWhen?: { met: () => Promise<boolean> | boolean; what: string };
  },
): Promise<string[]> {
  await revokeKeyFromDefault(admin, keys.snapshot(recipientShard));
  try {
    const ids: string[] = [];
    for (const frame of frames) ids.push(await h.send(sender, frame));
    const last = ids[ids.length - 1];
    const stop = stopWhen ?? {
      met: () => sendersSnapshotPast(admin, keys, sender, senderShard, last),
      what: "the sender's snapshot past his last frame",
    };
    await until(stop.met, stop.what);
    await h.stopSession();
    return ids;
  } finally {
    await restoreDefault(admin);
  }
}

/** Whether `entryId` of `key` waits for the group: not read yet, or read and pending. */
export async function unacknowledged(admin: Redis, key: string, entryId: string): Promise<boolean> {
  const pending = (await admin.xpending(key, "session", entryId, entryId, 1)) as unknown[];
  return pending.length > 0 || !(await acknowledgedUpTo(admin, key, entryId));
}
