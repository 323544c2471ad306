// RosterStore in Redis. Per user, under the user's hash tag:
//   keys.roster         hash  contact bare JID → RosterItem JSON (roster-item-json.ts form)
//   keys.rosterVersion  string counter, bumped by the same script that writes an item
//   keys.rosterPending  hash  contact bare JID → inbound subscribe stanza XML
// A missing version key reads as "0", which is the version of a roster that never changed.
// Items written before replaceItem existed may hold the same fields in another key order;
// replaceItem accepts those as equal to `expected` (see there) and rewrites them canonically.
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import {
  checkItemKey,
  parseRosterItem,
  sameRosterItem,
  serializeRosterItem,
} from "./roster-item-json.js";
import type { ReplaceItemResult, Roster, RosterItem, RosterStore } from "./roster-store.js";

export class RedisRosterStore implements RosterStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async get(user: string): Promise<Roster> {
    const [fieldsAndValues, version] = await this.scripts.mpRosterRead(
      this.keys.roster(user),
      this.keys.rosterVersion(user),
    );
    const items: RosterItem[] = [];
    for (let i = 1; i < fieldsAndValues.length; i += 2)
      items.push(parseRosterItem(fieldsAndValues[i]));
    return { version: version ?? "0", items };
  }

  async getItem(user: string, contact: string): Promise<RosterItem | undefined> {
    const json = await this.redis.hget(this.keys.roster(user), contact);
    return json === null ? undefined : parseRosterItem(json);
  }

  async replaceItem(
    user: string,
    contact: string,
    expected: RosterItem | undefined,
    next: RosterItem | undefined,
    maxItems: number,
  ): Promise<ReplaceItemResult> {
    checkItemKey(contact, next);
    const nextJson = next === undefined ? "" : serializeRosterItem(next);
    let expectedJson = expected === undefined ? "" : serializeRosterItem(expected);
    let reply = await this.replace(user, contact, expectedJson, nextJson, maxItems);
    // A stored item that differs only in its JSON form (written before the canonical form) is
    // the same item: compare-and-set again against exactly those bytes. Still atomic, since
    // the second script fails in turn if anything wrote in between.
    if (reply[0] === 0 && reply[1] === "changed" && reply[2] !== null) {
      const stored = reply[2];
      if (stored !== expectedJson && sameRosterItem(parseRosterItem(stored), expected)) {
        expectedJson = stored;
        reply = await this.replace(user, contact, expectedJson, nextJson, maxItems);
      }
    }
    return reply[0] === 1 ? { ok: true, version: reply[1] } : { ok: false, reason: reply[1] };
  }

  async addPendingIn(
    user: string,
    contact: string,
    stanza: string,
    maxPending: number,
    maxBytes?: number,
  ): Promise<boolean> {
    const added = await this.scripts.mpRosterAddPendingIn(
      this.keys.rosterPending(user),
      contact,
      stanza,
      maxPending,
      maxBytes ?? "",
    );
    return added === 1;
  }

  async removePendingIn(user: string, contact: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.rosterPending(user), contact)) === 1;
  }

  async hasPendingIn(user: string, contact: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.rosterPending(user), contact)) === 1;
  }

  async listPendingIn(user: string): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.keys.rosterPending(user))));
  }

  async deleteUser(user: string): Promise<void> {
    // One DEL of keys sharing a hash tag: a single slot, so it is valid in Redis Cluster too.
    await this.redis.del(
      this.keys.roster(user),
      this.keys.rosterVersion(user),
      this.keys.rosterPending(user),
    );
  }

  private replace(
    user: string,
    contact: string,
    expectedJson: string,
    nextJson: string,
    maxItems: number,
  ): Promise<[1, string] | [0, "changed", string | null] | [0, "full"]> {
    return this.scripts.mpRosterReplaceItem(
      this.keys.roster(user),
      this.keys.rosterVersion(user),
      contact,
      expectedJson,
      nextJson,
      maxItems,
    );
  }
}
