// RFC 6121 §2.1.2 (roster item attributes and groups) and §2.3.3 (roster set error cases):
// the <item/> element in both directions — rendering stored items for results and pushes,
// and reading the one item of a client's roster set.
import { Element } from "ltx";
import { parseJid } from "../../../shared/jid.js";
import { NS_ROSTER } from "../../../shared/ns.js";
import type { RosterItem } from "../../../shared/stores/roster/roster-store.js";
import { StanzaError } from "../../../shared/xmpp-errors.js";

/** The §2.3.3 "server-configured limit"s, in UTF-8 bytes (config rosterNameMaxBytes and rosterGroupMaxBytes). */
export interface RosterSetLimits {
  /** Longest `name` attribute accepted. */
  nameMaxBytes: number;
  /** Longest `<group/>` text accepted. */
  groupMaxBytes: number;
}

/** What a roster push carries: an item, or the removal of one (§2.5.2). */
export type PushedItem = RosterItem | { jid: string; subscription: "remove" };

/** A roster set, read and checked: a new name and groups for `jid`, or its removal. */
export type RosterSetRequest =
  | { kind: "update"; jid: string; name?: string; groups: string[] }
  | { kind: "remove"; jid: string };

export function rosterItemElement(item: PushedItem): Element {
  if (item.subscription === "remove")
    return new Element("item", { jid: item.jid, subscription: "remove" });
  const el = new Element("item", {
    jid: item.jid,
    name: item.name,
    subscription: item.subscription,
    ask: item.ask,
    approved: item.approved ? "true" : undefined,
  });
  for (const group of item.groups) el.c("group").t(group);
  return el;
}

export function rosterQuery(ver: string | undefined, items: PushedItem[]): Element {
  const query = new Element("query", { xmlns: NS_ROSTER, ver });
  for (const item of items) query.cnode(rosterItemElement(item));
  return query;
}

/**
 * Reads the payload of a roster set (§2.1.5, §2.3.3). Throws bad-request for anything but exactly
 * one <item/> or for duplicate groups, not-acceptable for an empty or oversized group or name,
 * and jid-malformed for a bad `jid`. `subscription` other than "remove", `ask` and `approved`
 * are ignored (§2.1.2.5: the server MUST ignore those values; they change only through presence
 * subscriptions, §3).
 */
export function readRosterSet(query: Element, limits: RosterSetLimits): RosterSetRequest {
  const children = query.getChildElements();
  if (children.length !== 1 || children[0].getName() !== "item")
    throw new StanzaError("bad-request", "modify", "a roster set holds exactly one <item/>");
  const item = children[0];
  if (item.attrs.jid === undefined)
    throw new StanzaError("bad-request", "modify", "the item has no jid");
  const jid = parseJid(item.attrs.jid).toString();
  if (item.attrs.subscription === "remove") return { kind: "remove", jid };

  const name = item.attrs.name;
  if (name !== undefined && Buffer.byteLength(name, "utf8") > limits.nameMaxBytes)
    throw new StanzaError("not-acceptable", "modify", `name exceeds ${limits.nameMaxBytes} bytes`);
  const groups: string[] = [];
  for (const group of item.getChildren("group")) {
    const text = group.getText();
    if (text === "")
      throw new StanzaError("not-acceptable", "modify", "a group name cannot be empty");
    if (Buffer.byteLength(text, "utf8") > limits.groupMaxBytes)
      throw new StanzaError(
        "not-acceptable",
        "modify",
        `group exceeds ${limits.groupMaxBytes} bytes`,
      );
    if (groups.includes(text))
      throw new StanzaError("bad-request", "modify", `duplicate group ${JSON.stringify(text)}`);
    groups.push(text);
  }
  return { kind: "update", jid, name: name === "" ? undefined : name, groups };
}
