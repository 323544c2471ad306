// Fault injection on a private redis-server through ACLs: Megaphone connects as the `default`
// user, so revoking one command from it makes exactly that command fail (NOPERM) while the
// test keeps full rights through an admin user of its own.
import { Redis } from "ioredis";
import { compareEntryIds } from "../../services/shared/bus/packets.js";

const ADMIN_USER = "megaphone-test-admin";
const ADMIN_PASSWORD = "megaphone-test-admin-pw";

/** Creates the admin user (idempotent) and connects as it; `db` selects a database. */
export async function connectAdmin(url: string, db = 0): Promise<Redis> {
  const bootstrap = new Redis(url, { maxRetriesPerRequest: 2 });
  try {
    await bootstrap.call(
      "ACL",
      "SETUSER",
      ADMIN_USER,
      "on",
      `>${ADMIN_PASSWORD}`,
      "~*",
      "&*",
      "+@all",
    );
  } finally {
    bootstrap.disconnect();
  }
  return new Redis(url, {
    username: ADMIN_USER,
    password: ADMIN_PASSWORD,
    db,
    maxRetriesPerRequest: 2,
  });
}

/** Makes `command` fail with NOPERM for Megaphone's connections (the default user). */
export async function revokeFromDefault(admin: Redis, command: string): Promise<void> {
  await admin.call("ACL", "SETUSER", "default", `-${command}`);
}

/**
 * Makes every command on `key` fail with NOPERM for Megaphone's connections, and no other key.
 * ACL key patterns can only allow, so the default user gets one pattern per position of `key`
 * (the keys that differ from it there) and one for the keys it is a prefix of; restoreDefault
 * undoes it.
 */
export async function revokeKeyFromDefault(admin: Redis, key: string): Promise<void> {
  const glob = (s: string) => s.replace(/[*?[\]\\^]/g, (c) => `\\${c}`);
  const patterns = [...key].map((c, i) => `~${glob(key.slice(0, i))}[^${glob(c)}]*`);
  patterns.push(`~${glob(key)}?*`);
  await admin.call("ACL", "SETUSER", "default", "resetkeys", ...patterns);
}

/** Gives the default user every command back. */
export async function restoreDefault(admin: Redis): Promise<void> {
  await admin.call("ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all");
}

/** Entries of a stream pending in the group, whoever holds them (XPENDING summary). */
export async function pendingCount(admin: Redis, key: string, group = "session"): Promise<number> {
  const summary = (await admin.xpending(key, group)) as [number, ...unknown[]];
  return Number(summary[0]);
}

/** Whether `group` has read `entryId` of stream `key` and acknowledged everything it read. */
export async function acknowledgedUpTo(
  admin: Redis,
  key: string,
  entryId: string,
  group = "session",
): Promise<boolean> {
  const groups = (await admin.xinfo("GROUPS", key)) as (string | number)[][];
  const fields = groups.find((g) => g[g.indexOf("name") + 1] === group);
  const lastDelivered = String(fields?.[fields.indexOf("last-delivered-id") + 1] ?? "0-0");
  return (
    compareEntryIds(lastDelivered, entryId) >= 0 && (await pendingCount(admin, key, group)) === 0
  );
}

/** Calls of `command` so far (INFO commandstats), e.g. to count maintenance rounds. */
export async function commandCalls(admin: Redis, command: string): Promise<number> {
  const info = await admin.info("commandstats");
  const line = info.split("\n").find((l) => l.startsWith(`cmdstat_${command.toLowerCase()}:`));
  return Number(/calls=(\d+)/.exec(line ?? "")?.[1] ?? 0);
}
