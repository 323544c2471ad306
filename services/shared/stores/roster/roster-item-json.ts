// The one stored form of a roster item, shared by every RosterStore implementation. It is
// canonical: fixed key order (jid, name, subscription, ask, approved, groups), optional fields
// left out rather than set to undefined, `approved` only when true, and groups in the order the
// client gave them (RFC 6121 §2.1.2.4 makes them a set, but keeping the client's order is kinder
// and order is then simply part of the value). Because every write goes through this function,
// two items are equal exactly when their serializations are equal, which is what
// RosterStore.replaceItem compares.
import type { RosterItem } from "./roster-store.js";

export function serializeRosterItem(item: RosterItem): string {
  // Rebuilt field by field so that the key order never depends on how the caller built `item`.
  const ordered: Record<string, unknown> = { jid: item.jid };
  if (item.name !== undefined) ordered.name = item.name;
  ordered.subscription = item.subscription;
  if (item.ask !== undefined) ordered.ask = item.ask;
  if (item.approved === true) ordered.approved = true;
  ordered.groups = [...item.groups];
  return JSON.stringify(ordered);
}

export function parseRosterItem(json: string): RosterItem {
  return JSON.parse(json) as RosterItem;
}

/** True if the two items (either may be absent) have the same stored form. */
export function sameRosterItem(a: RosterItem | undefined, b: RosterItem | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return serializeRosterItem(a) === serializeRosterItem(b);
}

/** The item replacing `contact`'s must be about `contact`: a caller bug otherwise, not data. */
export function checkItemKey(contact: string, next: RosterItem | undefined): void {
  if (next !== undefined && next.jid !== contact)
    throw new Error(`replaceItem: item ${next.jid} stored under ${contact}`);
}
