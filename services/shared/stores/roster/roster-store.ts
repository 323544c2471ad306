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

/** The outcome of RosterStore.replaceItem. */
export type ReplaceItemResult =
  | { ok: true; version: string }
  /**
   * "changed": the stored item is not `expected` (another write came first; read and retry).
   * "full": `next` would add an item to a roster that already holds `maxItems`.
   */
  | { ok: false; reason: "changed" | "full" };

export interface RosterStore {
  get(user: string): Promise<Roster>;
  getItem(user: string, contact: string): Promise<RosterItem | undefined>;
  /**
   * Compare-and-set of the item for `contact`, atomic with respect to every other write of
   * this store. Succeeds only while the stored item equals `expected` exactly (same stored
   * form, roster-item-json.ts; undefined = no item); then stores `next` (undefined removes
   * the item; next.jid must be `contact`), bumps the version and returns it. The version
   * changes only on success, except that removing an item that is absent (expected and next
   * both undefined) succeeds without a change. Creating an item when the roster already
   * holds `maxItems` fails with "full" and changes nothing; replacing or removing never does.
   */
  replaceItem(
    user: string,
    contact: string,
    expected: RosterItem | undefined,
    next: RosterItem | undefined,
    maxItems: number,
  ): Promise<ReplaceItemResult>;

  /**
   * Records an inbound subscription request from `contact` (stanza XML kept for redelivery),
   * replacing an earlier one from the same contact. Atomic: a request from a new contact is
   * refused (false, nothing stored) once `maxPending` requests are stored, and any request is
   * refused when the user's stored requests would then exceed `maxBytes` (sum of UTF-8 lengths
   * of the stanzas; no byte bound when absent). Returns true if stored.
   */
  addPendingIn(
    user: string,
    contact: string,
    stanza: string,
    maxPending: number,
    maxBytes?: number,
  ): Promise<boolean>;
  /** Removes the request from `contact`; true if there was one. Atomic read-and-delete. */
  removePendingIn(user: string, contact: string): Promise<boolean>;
  /** True if `contact` has a stored request (reads that one entry only). */
  hasPendingIn(user: string, contact: string): Promise<boolean>;
  /** Pending inbound requests: contact bare JID → stored stanza XML. */
  listPendingIn(user: string): Promise<Map<string, string>>;
  /** Deletes everything this store holds for `user` (account deletion). */
  deleteUser(user: string): Promise<void>;
}
