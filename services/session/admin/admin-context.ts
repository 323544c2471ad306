// A SessionContext for work the server does on no connection's behalf, such as deleting an
// account from `megaphone user del`: it reads and writes the shared stores directly, and every
// stanza for a connection travels as a `route` packet (a kick as a `kick` packet) into the
// inbox of the connection's shard, where its owning session applies it in order. It has no
// connection of its own, so send() and close() are programming errors here.
import { NO_OBSERVER } from "../core/observer.js";
import type { Element } from "ltx";
import type { Bus } from "../../shared/bus/bus.js";
import type { Config } from "../../shared/config.js";
import { parseConnId } from "../../shared/conn-id.js";
import type { Logger } from "../../shared/log.js";
import { NS_CLIENT } from "../../shared/ns.js";
import type { StreamErrorCondition } from "../../shared/xmpp-errors.js";
import type { ConnState } from "../core/connection.js";
import type { SessionContext, Stores } from "../core/context.js";

export interface AdminContextDeps {
  config: Config;
  log: Logger;
  stores: Stores;
  bus: Bus;
}

export class AdminContext implements SessionContext {
  readonly config: Config;
  readonly log: Logger;
  readonly stores: Stores;
  readonly domain: string;
  readonly observe = NO_OBSERVER;
  private readonly deferred: (() => Promise<unknown>)[] = [];

  constructor(private readonly deps: AdminContextDeps) {
    this.config = deps.config;
    this.log = deps.log;
    this.stores = deps.stores;
    this.domain = deps.config.domain;
  }

  now(): number {
    return Date.now();
  }

  overloaded(): boolean {
    return false;
  }

  send(conn: ConnState): void {
    throw new Error(`an admin context has no connection to send to (${conn.connId})`);
  }

  close(conn: ConnState): void {
    throw new Error(`an admin context has no connection to close (${conn.connId}); kick it`);
  }

  /** An admin command applies no shard entry: nothing it does can be repeated by a claim. */
  takeOrigin(): undefined {
    return undefined;
  }

  requestResume(conn: ConnState): void {
    throw new Error(`an admin context has no connection to resume (${conn.connId})`);
  }

  async deliver(connId: string, stanza: Element): Promise<void> {
    if (!stanza.attrs.xmlns) stanza.attrs.xmlns = NS_CLIENT;
    const { shard } = parseConnId(connId);
    await this.deps.bus.toShard(shard, { k: "route", c: connId, d: stanza.toString() });
  }

  async kick(connId: string, condition: StreamErrorCondition): Promise<void> {
    const { shard } = parseConnId(connId);
    await this.deps.bus.toShard(shard, { k: "kick", c: connId, d: condition });
  }

  /** Every write of this context is awaited where it is made, so effects run at flush(). */
  afterEffects(effect: () => Promise<unknown>): void {
    this.deferred.push(effect);
  }

  /** Runs the effects deferred by afterEffects, in order. */
  async flush(): Promise<void> {
    while (this.deferred.length > 0) await this.deferred.shift()?.();
  }
}
