// Fixtures shared by the roster and presence unit tests.
import assert from "node:assert/strict";
import { pino } from "pino";
import type { RosterItem } from "../../services/shared/stores/roster/roster-store.js";
import type { TestSessionContext } from "./session-context.js";

/** Stores `item` for `owner` as it is, over whatever is there (test setup only). */
export async function seedItem(
  ctx: TestSessionContext,
  owner: string,
  item: RosterItem,
): Promise<void> {
  const current = await ctx.stores.rosters.getItem(owner, item.jid);
  const result = await ctx.stores.rosters.replaceItem(owner, item.jid, current, item, 1_000_000);
  if (!result.ok) throw new Error(`seedItem: ${result.reason}`);
}

/**
 * Makes each of the next `times` reads of `owner`'s item for `contact` followed by `write`,
 * as if another session process changed the item between this one's read and its write.
 * Returns the number of such reads so far.
 */
export function interfereAfterReads(
  ctx: TestSessionContext,
  owner: string,
  contact: string,
  times: number,
  write: (current: RosterItem | undefined, n: number) => RosterItem,
): () => number {
  const rosters = ctx.stores.rosters;
  const getItem = rosters.getItem.bind(rosters);
  let reads = 0;
  rosters.getItem = async (user, jid) => {
    const item = await getItem(user, jid);
    if (user === owner && jid === contact && reads < times) {
      reads++;
      const result = await rosters.replaceItem(user, jid, item, write(item, reads), 1_000_000);
      assert.ok(result.ok, "the interfering write itself succeeds");
    }
    return item;
  };
  return () => reads;
}

/** Sends ctx's warn-and-above log lines, parsed, to the returned array. */
export function captureLogs(ctx: TestSessionContext): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  Object.assign(ctx, { log });
  return lines;
}
