// A SessionContext for unit tests: memory stores, no network, and a record of every effect.
// Stanzas written to a connection are kept as strings, by path (`sent` through send(),
// `delivered` through deliver()) and merged in order (`outbox`). Connections are created
// already bound, and frames go through the real session core (handleFrame), so tests see
// exactly what a client would: stamping, routing and error replies included.
import { NO_OBSERVER } from "../../services/session/core/observer.js";
import { parse, type Element } from "ltx";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import { parseJid } from "../../services/shared/jid.js";
import { silentLogger, type Logger } from "../../services/shared/log.js";
import { NS_CLIENT } from "../../services/shared/ns.js";
import { MemoryAccountStore } from "../../services/shared/stores/account/memory-account-store.js";
import type { Account } from "../../services/shared/stores/account/account-store.js";
import { MemoryDirectedPresenceStore } from "../../services/shared/stores/directed/memory-directed-store.js";
import { MemoryOfflineStore } from "../../services/shared/stores/offline/memory-offline-store.js";
import { MemoryRosterStore } from "../../services/shared/stores/roster/memory-roster-store.js";
import { MemoryRouteStore } from "../../services/shared/stores/route/memory-route-store.js";
import { MemorySmQueueStore } from "../../services/shared/stores/sm/memory-sm-queue-store.js";
import { MemoryFastTokenStore } from "../../services/shared/stores/fast-token/memory-fast-token-store.js";
import type { ResumeRequest } from "../../services/shared/bus/packets.js";
import type { StreamErrorCondition } from "../../services/shared/xmpp-errors.js";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import type { SessionContext, Stores } from "../../services/session/core/context.js";
import { handleFrame } from "../../services/session/core/dispatch.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";

export const TEST_DOMAIN = "example.com";

/** A placeholder account: the features under test never check credentials. */
const TEST_ACCOUNT: Account = {
  scram: {
    "SCRAM-SHA-1": { salt: "c2FsdA==", iterations: 4096, storedKey: "", serverKey: "" },
    "SCRAM-SHA-256": { salt: "c2FsdA==", iterations: 4096, storedKey: "", serverKey: "" },
  },
  createdAt: 0,
};

export interface TestContextOptions {
  domain?: string;
  config?: Partial<Config>;
  stores?: Partial<Stores>;
  /** Initial clock, ms since epoch; advance it with `nowMs`. */
  now?: number;
}

export interface ConnectOptions {
  edgeId?: string;
  shard?: number;
  /** Create the account if it does not exist (default true). */
  createAccount?: boolean;
}

export interface WrittenStanza {
  connId: string;
  via: "send" | "deliver";
  xml: string;
}

export class TestSessionContext implements SessionContext {
  readonly config: Config;
  readonly log: Logger = silentLogger;
  readonly stores: Stores;
  readonly domain: string;
  readonly observe = NO_OBSERVER;
  nowMs: number;

  /** connId → what send() wrote, in order. */
  readonly sent = new Map<string, string[]>();
  /** connId → what deliver() delivered, in order. */
  readonly delivered = new Map<string, string[]>();
  /** Everything written to any connection by either path, in order. */
  readonly written: WrittenStanza[] = [];
  readonly kicked: { connId: string; condition: StreamErrorCondition }[] = [];
  readonly closed: { connId: string; condition?: StreamErrorCondition; text?: string }[] = [];
  /** XEP-0198 resumptions asked for, in order. */
  readonly resumeRequests: { connId: string; request: ResumeRequest }[] = [];
  /** The connections created by connect(), by id. */
  readonly conns = new Map<string, ConnState>();

  private serial = 0;

  constructor(options: TestContextOptions = {}) {
    this.domain = options.domain ?? TEST_DOMAIN;
    this.config = { ...DEFAULTS, ...options.config, domain: this.domain };
    this.stores = {
      accounts: options.stores?.accounts ?? new MemoryAccountStore(),
      rosters: options.stores?.rosters ?? new MemoryRosterStore(),
      routes: options.stores?.routes ?? new MemoryRouteStore(),
      offline: options.stores?.offline ?? new MemoryOfflineStore(),
      directed: options.stores?.directed ?? new MemoryDirectedPresenceStore(),
      smQueues: options.stores?.smQueues ?? new MemorySmQueueStore(),
      fastTokens: options.stores?.fastTokens ?? new MemoryFastTokenStore(),
    };
    this.nowMs = options.now ?? Date.UTC(2024, 0, 1);
  }

  now(): number {
    return this.nowMs;
  }

  send(conn: ConnState, element: Element | string): void {
    this.record(conn.connId, "send", typeof element === "string" ? element : element.toString());
  }

  async deliver(connId: string, stanza: Element): Promise<void> {
    this.record(connId, "deliver", stanza.toString());
  }

  /** Shards to report as overloaded (inbox lag past the bound). */
  readonly overloadedShards = new Set<number>();

  overloaded(shard: number): boolean {
    return this.overloadedShards.has(shard);
  }

  /** Effects deferred until "stored": run by input() after the frame, like a batch flush. */
  readonly afterStored: (() => Promise<unknown>)[] = [];

  afterEffects(effect: () => Promise<unknown>): void {
    this.afterStored.push(effect);
  }

  async runAfterEffects(): Promise<void> {
    while (this.afterStored.length > 0) await this.afterStored.shift()?.();
  }

  async kick(connId: string, condition: StreamErrorCondition): Promise<void> {
    this.kicked.push({ connId, condition });
  }

  close(conn: ConnState, condition?: StreamErrorCondition, text?: string): void {
    this.closed.push({ connId: conn.connId, condition, text });
    conn.stage = "closed";
  }

  takeOrigin(): undefined {
    return undefined;
  }

  requestResume(conn: ConnState, request: ResumeRequest): void {
    this.resumeRequests.push({ connId: conn.connId, request });
  }

  async createAccount(bareJid: string): Promise<void> {
    await this.stores.accounts.create(bareJid, TEST_ACCOUNT);
  }

  /**
   * A bound connection for `fullJid` ("alice@example.com/phone"), as after SASL and resource
   * binding: stage "bound", its route stored, and its account created unless told otherwise.
   */
  async connect(fullJid: string, options: ConnectOptions = {}): Promise<ConnState> {
    const jid = parseJid(fullJid);
    if (!jid.resource) throw new Error(`connect() needs a full JID, got ${fullJid}`);
    const bare = jid.bareString();
    if (options.createAccount ?? true) await this.createAccount(bare);
    const edgeId = options.edgeId ?? "edge-test";
    const shard = options.shard ?? 0;
    const conn = newConnState(
      `${edgeId}.${shard}.${(++this.serial).toString(36)}`,
      edgeId,
      shard,
      this.nowMs,
    );
    conn.stage = "bound";
    conn.streamId = `stream-${this.serial}`;
    conn.bareJid = bare;
    conn.resource = jid.resource;
    const bound = await this.stores.routes.bind(
      bare,
      jid.resource,
      conn.connId,
      this.config.maxResourcesPerUser,
    );
    if (!bound.ok) throw new Error(`connect(${fullJid}): config.maxResourcesPerUser reached`);
    this.conns.set(conn.connId, conn);
    return conn;
  }

  /**
   * Ends a bound connection as the shell does: disconnect hooks, then the route goes.
   * (io/live-context.ts endConnection.)
   */
  async disconnect(chain: HandlerChain, conn: ConnState): Promise<void> {
    const wasBound = conn.stage === "bound";
    conn.stage = "closed";
    this.conns.delete(conn.connId);
    if (!wasBound || !conn.bareJid || !conn.resource) return;
    for (const hook of chain.onDisconnect) await hook(this, conn);
    await this.stores.routes.unbind(conn.bareJid, conn.resource, conn.connId);
  }

  /** Everything written to `conn` (send and deliver merged, in order), parsed. */
  received(conn: ConnState | string): Element[] {
    const connId = typeof conn === "string" ? conn : conn.connId;
    return this.written.filter((w) => w.connId === connId).map((w) => parse(w.xml));
  }

  /** Like received(), as strings. */
  receivedXml(conn: ConnState | string): string[] {
    const connId = typeof conn === "string" ? conn : conn.connId;
    return this.written.filter((w) => w.connId === connId).map((w) => w.xml);
  }

  /** Forgets every recorded write (not kicks or closes), e.g. between steps of a test. */
  clearOutput(): void {
    this.sent.clear();
    this.delivered.clear();
    this.written.length = 0;
  }

  private record(connId: string, via: "send" | "deliver", xml: string): void {
    const byPath = via === "send" ? this.sent : this.delivered;
    const list = byPath.get(connId) ?? [];
    list.push(xml);
    byPath.set(connId, list);
    this.written.push({ connId, via, xml });
  }
}

/**
 * Feeds one frame from `conn`'s client through the session core, as the edge would. A
 * top-level element without a namespace gets jabber:client, so tests can write `<presence/>`.
 */
export async function input(
  ctx: TestSessionContext,
  chain: HandlerChain,
  conn: ConnState,
  xml: string,
): Promise<void> {
  const el = parse(xml);
  if (el.attrs.xmlns === undefined) el.attrs.xmlns = NS_CLIENT;
  await handleFrame(ctx, chain, conn, el.toString());
  await ctx.runAfterEffects();
}

/**
 * Checks a stanza against literal XML. Attributes may come in any order, whitespace-only text
 * is ignored, an expected attribute value "*" matches any value (for generated ids), and a
 * top-level element without a namespace counts as jabber:client.
 */
export function assertXml(actual: Element | string, expected: string, message?: string): void {
  const a = typeof actual === "string" ? parse(actual) : actual;
  const e = parse(expected);
  const problem = mismatch(a, e, true, a.name);
  if (problem)
    throw new Error(
      `${message ? `${message}: ` : ""}${problem}\n  actual:   ${a.toString()}\n  expected: ${e.toString()}`,
    );
}

/** Checks a list of stanzas, in order, against literal XML (see assertXml). */
export function assertXmlList(
  actual: (Element | string)[],
  expected: string[],
  message?: string,
): void {
  const prefix = message ? `${message}: ` : "";
  const dump = () =>
    `\n  actual:\n    ${actual.map(String).join("\n    ")}\n  expected:\n    ${expected.join("\n    ")}`;
  if (actual.length !== expected.length)
    throw new Error(`${prefix}${actual.length} stanzas instead of ${expected.length}${dump()}`);
  actual.forEach((a, i) => {
    const el = typeof a === "string" ? parse(a) : a;
    const problem = mismatch(el, parse(expected[i]), true, el.name);
    if (problem) throw new Error(`${prefix}stanza ${i}: ${problem}${dump()}`);
  });
}

function mismatch(a: Element, e: Element, top: boolean, path: string): string | undefined {
  if (a.name !== e.name) return `${path}: element <${a.name}> instead of <${e.name}>`;
  const attrs = (el: Element) => {
    const copy = { ...el.attrs };
    if (top && copy.xmlns === undefined) copy.xmlns = NS_CLIENT;
    return copy;
  };
  const aa = attrs(a);
  const ea = attrs(e);
  const keys = new Set([...Object.keys(aa), ...Object.keys(ea)]);
  for (const key of keys) {
    if (aa[key] === undefined) return `${path}: missing attribute ${key}="${ea[key]}"`;
    if (ea[key] === undefined) return `${path}: unexpected attribute ${key}="${aa[key]}"`;
    if (ea[key] !== "*" && ea[key] !== aa[key])
      return `${path}: ${key}="${aa[key]}" instead of "${ea[key]}"`;
  }
  const ac = a.getChildElements();
  const ec = e.getChildElements();
  if (ac.length !== ec.length)
    return `${path}: ${ac.length} child elements instead of ${ec.length}`;
  for (let i = 0; i < ac.length; i++) {
    const problem = mismatch(ac[i], ec[i], false, `${path}/${ac[i].name}`);
    if (problem) return problem;
  }
  const text = (el: Element) =>
    el.children
      .filter((c): c is string => typeof c === "string")
      .join("")
      .trim();
  if (text(a) !== text(e))
    return `${path}: text ${JSON.stringify(text(a))} instead of ${JSON.stringify(text(e))}`;
  return undefined;
}
