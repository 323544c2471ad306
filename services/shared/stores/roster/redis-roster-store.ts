// RosterStore in Redis. Per user, under the user's hash tag:
//   keys.roster         hash  contact bare JID → RosterItem JSON
//   keys.rosterVersion  string counter, bumped by the same script that writes an item
//   keys.rosterPending  hash  contact bare JID → inbound subscribe stanza XML
// A missing version key reads as "0", which is the version of a roster that never changed.
import { execAll } from "../../redis/multi.js";
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import type { Roster, RosterItem, RosterStore } from "./roster-store.js";

export class RedisRosterStore implements RosterStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async get(user: string): Promise<Roster> {
    // One transaction, so the version always matches the items returned with it.
    const [items, version] = await execAll(
      this.redis.multi().hgetall(this.keys.roster(user)).get(this.keys.rosterVersion(user)),
    );
    return {
      version: (version as string | null) ?? "0",
      items: Object.values(items as Record<string, string>).map(parseItem),
    };
  }

  async getItem(user: string, contact: string): Promise<RosterItem | undefined> {
    const json = await this.redis.hget(this.keys.roster(user), contact);
    return json === null ? undefined : parseItem(json);
  }

  async setItem(user: string, item: RosterItem): Promise<string> {
    const version = await this.scripts.mpRosterSetItem(
      this.keys.roster(user),
      this.keys.rosterVersion(user),
      item.jid,
      JSON.stringify(item),
    );
    return String(version);
  }

  async removeItem(user: string, contact: string): Promise<string | undefined> {
    const version = await this.scripts.mpRosterRemoveItem(
      this.keys.roster(user),
      this.keys.rosterVersion(user),
      contact,
    );
    return version === null ? undefined : String(version);
  }

  async addPendingIn(user: string, contact: string, stanza: string): Promise<void> {
    await this.redis.hset(this.keys.rosterPending(user), contact, stanza);
  }

  async removePendingIn(user: string, contact: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.rosterPending(user), contact)) === 1;
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
}

function parseItem(json: string): RosterItem {
  return JSON.parse(json) as RosterItem;
}
