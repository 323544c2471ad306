// What handlers see of the world: the connection's state, the stores, and effects
// (send to this client, route a stanza to a JID or a connection, close). The shell
// (session/io) implements it; unit tests implement it over memory stores.
import type { Element } from "ltx";
import type { Config } from "../../shared/config.js";
import type { Logger } from "../../shared/log.js";
import type { AccountStore } from "../../shared/stores/account/account-store.js";
import type { DirectedPresenceStore } from "../../shared/stores/directed/directed-store.js";
import type { OfflineStore } from "../../shared/stores/offline/offline-store.js";
import type { RosterStore } from "../../shared/stores/roster/roster-store.js";
import type { RouteStore } from "../../shared/stores/route/route-store.js";
import type { SmQueueStore } from "../../shared/stores/sm/sm-queue-store.js";
import type { FastTokenStore } from "../../shared/stores/fast-token/fast-token-store.js";
import type { ResumeRequest } from "../../shared/bus/packets.js";
import type { StreamErrorCondition } from "../../shared/xmpp-errors.js";
import type { ConnState } from "./connection.js";
import type { CoreObserver } from "./observer.js";

export interface Stores {
  accounts: AccountStore;
  rosters: RosterStore;
  routes: RouteStore;
  offline: OfflineStore;
  directed: DirectedPresenceStore;
  smQueues: SmQueueStore;
  fastTokens: FastTokenStore;
}

/**
 * A recipient's binding as a sender read it (RouteStore.list), for two-hop delivery
 * (docs/capacity.md): `edge` present when its session let senders write to its edge.
 */
export interface DirectTarget {
  bareJid: string;
  resource: string;
  edge?: string;
}

export interface SessionContext {
  readonly config: Config;
  readonly log: Logger;
  readonly stores: Stores;
  /** The served domain (config.domain), also the server's JID. */
  readonly domain: string;
  /** Told of logins, stanzas and offline storage, for metrics. */
  readonly observe: CoreObserver;
  now(): number;
  /** True while shard `shard`'s inbox is further behind than config.maxInboxLagEntries. */
  overloaded(shard: number): boolean;

  /** Writes an element to this connection's client, in order. */
  send(conn: ConnState, element: Element | string): void;
  /**
   * Delivers a complete, stamped stanza to the connection `connId` (any shard). `target`: the
   * binding routing found it by, which lets the stanza skip the connection's shard inbox when
   * its session allowed that (two-hop delivery).
   */
  deliver(connId: string, stanza: Element, target?: DirectTarget): Promise<void>;
  /**
   * Two-hop delivery: once this unit's writes are stored (the initial presence's, offline
   * messages included), lets senders write to this connection's edge directly, if it is then
   * still available, without XEP-0198 and not BOSH. Absent where nothing skips the inbox.
   */
  allowDirect?(conn: ConnState): void;
  /**
   * The origin of the next effect of the entry being applied (services/shared/bus/origin.ts),
   * for stores that must recognise a repeat (offline storage); undefined outside an entry.
   */
  takeOrigin(): string | undefined;
  /** Ends another connection with a stream error (e.g. a resource conflict). */
  kick(connId: string, condition: StreamErrorCondition): Promise<void>;
  /**
   * Runs `effect` once every write issued so far in this unit of work is stored (before the
   * bus acknowledges it). For removals that must not precede the deliveries they follow,
   * such as taking messages out of offline storage: a failure redelivers, never loses.
   */
  afterEffects(effect: () => Promise<unknown>): void;
  /**
   * XEP-0198 §5: asks the shard of session `request.previd` to move that session onto this
   * connection; the answer comes back to this connection as a `resume-result` packet.
   */
  requestResume(conn: ConnState, request: ResumeRequest): void;
  /** Ends this connection: optional stream error, then </close>, then the socket. */
  close(conn: ConnState, condition?: StreamErrorCondition, text?: string): void;
}
