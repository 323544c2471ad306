// Rosters (RFC 6121 §2) with a per-user version (XEP-0237), and pending inbound
// subscription requests (RFC 6121 §3.1.3), which are kept apart from roster items because a
// request from a stranger must not create a roster item.

export type Subscription = "none" | "to" | "from" | "both";

export interface RosterItem {
  /** Bare JID of the contact. */
  jid: string;
  name?: string;
  subscription: Subscription;
  /** "subscribe" while the user's outbound request awaits an answer (pending out). */
  ask?: "subscribe";
  /** Pre-approved subscription (RFC 6121 §3.4). */
  approved?: boolean;
  groups: string[];
}

export interface Roster {
  /** Increases with every change; "0" for an empty roster that never changed. */
  version: string;
  items: RosterItem[];
}

export interface RosterStore {
  get(user: string): Promise<Roster>;
  getItem(user: string, contact: string): Promise<RosterItem | undefined>;
  /** Creates or replaces the item for item.jid and returns the new roster version. Atomic. */
  setItem(user: string, item: RosterItem): Promise<string>;
  /** Removes the item; returns the new version, or undefined if there was no such item. Atomic. */
  removeItem(user: string, contact: string): Promise<string | undefined>;

  /** Records an inbound subscription request from `contact` (stanza XML kept for redelivery). */
  addPendingIn(user: string, contact: string, stanza: string): Promise<void>;
  removePendingIn(user: string, contact: string): Promise<boolean>;
  /** Pending inbound requests: contact bare JID → stored stanza XML. */
  listPendingIn(user: string): Promise<Map<string, string>>;
  /** Deletes everything this store holds for `user` (account deletion). */
  deleteUser(user: string): Promise<void>;
}
