// RosterStore in process memory, for tests and single-process demo mode. Items are kept in
// their stored form (roster-item-json.ts), as the Redis store keeps them, so both compare
// `expected` in replaceItem the same way and hand out fresh copies on every read. Each method
// runs without an await between its read and its write, which makes it atomic in one process.
import { checkItemKey, parseRosterItem, serializeRosterItem } from "./roster-item-json.js";
import type { ReplaceItemResult, Roster, RosterItem, RosterStore } from "./roster-store.js";

interface UserRoster {
  version: number;
  /** contact bare JID → stored item JSON */
  items: Map<string, string>;
  /** contact bare JID → subscribe stanza XML */
  pendingIn: Map<string, string>;
}

export class MemoryRosterStore implements RosterStore {
  private readonly users = new Map<string, UserRoster>();

  async get(user: string): Promise<Roster> {
    const roster = this.users.get(user);
    return {
      version: String(roster?.version ?? 0),
      items: roster ? [...roster.items.values()].map(parseRosterItem) : [],
    };
  }

  async getItem(user: string, contact: string): Promise<RosterItem | undefined> {
    const json = this.users.get(user)?.items.get(contact);
    return json === undefined ? undefined : parseRosterItem(json);
  }

  async replaceItem(
    user: string,
    contact: string,
    expected: RosterItem | undefined,
    next: RosterItem | undefined,
    maxItems: number,
  ): Promise<ReplaceItemResult> {
    checkItemKey(contact, next);
    const roster = this.users.get(user);
    const stored = roster?.items.get(contact);
    const wanted = expected === undefined ? undefined : serializeRosterItem(expected);
    if (stored !== wanted) return { ok: false, reason: "changed" };
    if (next === undefined) {
      if (!roster || stored === undefined)
        return { ok: true, version: String(roster?.version ?? 0) };
      roster.items.delete(contact);
      return { ok: true, version: String(++roster.version) };
    }
    const target = roster ?? this.userRoster(user);
    if (stored === undefined && target.items.size >= maxItems) return { ok: false, reason: "full" };
    target.items.set(contact, serializeRosterItem(next));
    return { ok: true, version: String(++target.version) };
  }

  async addPendingIn(
    user: string,
    contact: string,
    stanza: string,
    maxPending: number,
    maxBytes = Infinity,
  ): Promise<boolean> {
    const pending = this.userRoster(user).pendingIn;
    if (!pending.has(contact) && pending.size >= maxPending) return false;
    let bytes = Buffer.byteLength(stanza, "utf8");
    for (const [other, stored] of pending)
      if (other !== contact) bytes += Buffer.byteLength(stored, "utf8");
    if (bytes > maxBytes) return false;
    pending.set(contact, stanza);
    return true;
  }

  async removePendingIn(user: string, contact: string): Promise<boolean> {
    return this.users.get(user)?.pendingIn.delete(contact) ?? false;
  }

  async hasPendingIn(user: string, contact: string): Promise<boolean> {
    return this.users.get(user)?.pendingIn.has(contact) ?? false;
  }

  async listPendingIn(user: string): Promise<Map<string, string>> {
    return new Map(this.users.get(user)?.pendingIn);
  }

  async deleteUser(user: string): Promise<void> {
    this.users.delete(user);
  }

  private userRoster(user: string): UserRoster {
    let roster = this.users.get(user);
    if (!roster) {
      roster = { version: 0, items: new Map(), pendingIn: new Map() };
      this.users.set(user, roster);
    }
    return roster;
  }
}
