// RosterStore in process memory, for tests and single-process demo mode.
import { jsonCopy } from "../json-copy.js";
import type { Roster, RosterItem, RosterStore } from "./roster-store.js";

interface UserRoster {
  version: number;
  /** contact bare JID → item */
  items: Map<string, RosterItem>;
  /** contact bare JID → subscribe stanza XML */
  pendingIn: Map<string, string>;
}

export class MemoryRosterStore implements RosterStore {
  private readonly users = new Map<string, UserRoster>();

  async get(user: string): Promise<Roster> {
    const roster = this.users.get(user);
    return {
      version: String(roster?.version ?? 0),
      items: roster ? [...roster.items.values()].map(jsonCopy) : [],
    };
  }

  async getItem(user: string, contact: string): Promise<RosterItem | undefined> {
    const item = this.users.get(user)?.items.get(contact);
    return item && jsonCopy(item);
  }

  async setItem(user: string, item: RosterItem): Promise<string> {
    const roster = this.userRoster(user);
    roster.items.set(item.jid, jsonCopy(item));
    return String(++roster.version);
  }

  async removeItem(user: string, contact: string): Promise<string | undefined> {
    const roster = this.users.get(user);
    if (!roster?.items.delete(contact)) return undefined;
    return String(++roster.version);
  }

  async addPendingIn(user: string, contact: string, stanza: string): Promise<void> {
    this.userRoster(user).pendingIn.set(contact, stanza);
  }

  async removePendingIn(user: string, contact: string): Promise<boolean> {
    return this.users.get(user)?.pendingIn.delete(contact) ?? false;
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
