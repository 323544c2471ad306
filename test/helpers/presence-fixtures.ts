// Fixtures shared by the presence unit tests (test/unit/presence-*.test.ts): the users, a
// session core with roster and presence registered on memory stores, and the Appendix A state
// names of RFC 6121 that the subscription state tables are written in.
import type { Element } from "ltx";
import type { ConnState } from "../../services/session/core/connection.js";
import { HandlerChain } from "../../services/session/core/handler-chain.js";
import { registerPresence } from "../../services/session/features/presence/presence.js";
import type { SubState } from "../../services/session/features/presence/subscription-state.js";
import { registerRoster } from "../../services/session/features/roster/roster.js";
import type { RosterItem } from "../../services/shared/stores/roster/roster-store.js";
import { seedItem } from "./roster-fixtures.js";
import { TestSessionContext, input } from "./session-context.js";

export const ALICE = "alice@example.com";
export const BOB = "bob@example.com";
export const CAROL = "carol@example.com";
export const DAVE = "dave@example.com";
export const ERIN = "erin@example.com";
export const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";

/** A roster push of `item` to `to` at roster version `ver`. */
export const push = (to: string, ver: string, item: string) =>
  `<iq type="set" id="*" to="${to}"><query xmlns="jabber:iq:roster" ver="${ver}">${item}</query></iq>`;

/** The defined condition of an error stanza, or undefined. */
export function conditionOf(stanza: Element | undefined): string | undefined {
  const error = stanza?.attrs.type === "error" ? stanza.getChild("error") : undefined;
  return error
    ?.getChildElements()
    .find((c) => c.attrs.xmlns === "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name !== "text")
    ?.name;
}

/** A session core for the presence tests (RFC 6121 §4), with an initial-presence hook. */
export interface PresenceWorld {
  ctx: TestSessionContext;
  chain: HandlerChain;
  /** Connection ids the initial-presence hook ran for, in order. */
  hookCalls: string[];
  /** Seeds `owner`'s roster item for `jid` with `subscription`. */
  item(owner: string, jid: string, subscription: RosterItem["subscription"]): Promise<void>;
  /** Connects `jid` (a full JID) and sends `presence`. */
  online(jid: string, presence?: string): Promise<ConnState>;
  /** The connection's remembered directed-presence recipients, sorted. */
  directedOf(conn: ConnState): Promise<string[]>;
}

export function presenceWorld(): PresenceWorld {
  const ctx = new TestSessionContext();
  const chain = new HandlerChain();
  registerRoster(chain);
  registerPresence(chain);
  const hookCalls: string[] = [];
  chain.onInitialPresence.push(async (hookCtx, conn) => {
    hookCalls.push(conn.connId);
    hookCtx.send(
      conn,
      `<message xmlns="jabber:client" from="${ctx.domain}"><body>hook</body></message>`,
    );
  });
  return {
    ctx,
    chain,
    hookCalls,
    async item(owner, jid, subscription) {
      await seedItem(ctx, owner, { jid, subscription, groups: [] });
    },
    async online(jid, presence = "<presence/>") {
      const conn = await ctx.connect(jid);
      await input(ctx, chain, conn, presence);
      return conn;
    },
    async directedOf(conn) {
      return (await ctx.stores.directed.list(conn.shard, conn.connId)).sort();
    },
  };
}

/** A session core for the subscription tests (RFC 6121 §3): alice and bob, both online. */
export interface SubscriptionWorld {
  ctx: TestSessionContext;
  chain: HandlerChain;
  /** alice, interested and available. */
  phone: ConnState;
  /** bob, interested and available. */
  pc: ConnState;
  itemOf(owner: string, jid: string): Promise<RosterItem | undefined>;
  /** The bare JIDs whose requests `owner` has pending. */
  pending(owner: string): Promise<string[]>;
}

export async function subscriptionWorld(): Promise<SubscriptionWorld> {
  const ctx = new TestSessionContext();
  const chain = new HandlerChain();
  registerRoster(chain);
  registerPresence(chain);
  const phone = await ctx.connect(`${ALICE}/phone`);
  const pc = await ctx.connect(`${BOB}/pc`);
  for (const conn of [phone, pc]) {
    await input(
      ctx,
      chain,
      conn,
      `<iq type="get" id="roster"><query xmlns="jabber:iq:roster"/></iq>`,
    );
    await input(ctx, chain, conn, `<presence/>`);
  }
  ctx.clearOutput();
  return {
    ctx,
    chain,
    phone,
    pc,
    itemOf: (owner, jid) => ctx.stores.rosters.getItem(owner, jid),
    pending: async (owner) => [...(await ctx.stores.rosters.listPendingIn(owner)).keys()],
  };
}

/** One row of an Appendix A table: [state, (unused), route?/deliver?, new state]. */
export type StateRow = [string, string, boolean, string];

/** The nine states of RFC 6121 Appendix A.1, in the order of its tables. */
export const STATES = [
  "None",
  "None + Pending Out",
  "None + Pending In",
  "None + Pending Out/In",
  "To",
  "To + Pending In",
  "From",
  "From + Pending Out",
  "Both",
];

/** The state an Appendix A name stands for. */
export function parseState(s: string): SubState {
  return {
    subscription: s.split("+")[0].trim().toLowerCase() as RosterItem["subscription"],
    pendingOut: /Pending Out/.test(s),
    pendingIn: /Pending (Out\/)?In/.test(s),
  };
}

/** The Appendix A name of a state. */
export function stateName(s: SubState): string {
  const base = s.subscription[0].toUpperCase() + s.subscription.slice(1);
  if (s.pendingOut && s.pendingIn) return `${base} + Pending Out/In`;
  if (s.pendingOut) return `${base} + Pending Out`;
  if (s.pendingIn) return `${base} + Pending In`;
  return base;
}

/** A table of [flag, new state ("" = no change)] per state, in STATES order. */
export function stateTable(rows: [boolean, string][]): StateRow[] {
  return rows.map(([flag, next], i) => [STATES[i], "", flag, next === "" ? STATES[i] : next]);
}
