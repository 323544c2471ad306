// Stanza dispatch for bound connections. IQs addressed to the server or to the user's own
// account are routed by (type, namespace, payload name), like xmpp.js iq/callee and
// Prosody's iq/bare/<xmlns>:<name> events (RFC 6120 §8.2.3): a get/set nobody handles
// gets service-unavailable; a handler that throws a StanzaError gets that error; any
// other exception becomes internal-server-error and is logged.
import { Element } from "ltx";
import { StanzaError, errorReply } from "../../shared/xmpp-errors.js";
import type { ConnState } from "./connection.js";
import type { SessionContext } from "./context.js";
import { isIqResponse } from "./stanza-kind.js";
import { isStoreError } from "../../shared/redis/errors.js";
import type { TakenOver } from "../../shared/stores/route/route-store.js";

/** Returns the payload of the result (or nothing for an empty result). */
export type IqHandler = (
  ctx: SessionContext,
  conn: ConnState,
  iq: Element,
  payload: Element,
) => Promise<Element | void>;

export interface IqHandlerOptions {
  forOtherAccounts?: boolean;
}

export type StanzaHandler = (
  ctx: SessionContext,
  conn: ConnState,
  stanza: Element,
) => Promise<void>;

/** Called once per connection event; features use them to react to lifecycle changes. */
export type ConnHook = (ctx: SessionContext, conn: ConnState) => Promise<void>;

/** Called when `conn` has just taken its resource over from another connection. */
export type TakeoverHook = (
  ctx: SessionContext,
  conn: ConnState,
  previous: TakenOver,
) => Promise<void>;

export class HandlerChain {
  private readonly iqHandlers = new Map<string, IqHandler>();
  /** Keys of handlers that also answer iqs sent to another user's bare JID. */
  private readonly forOtherAccounts = new Set<string>();
  private readonly presenceHandlers: StanzaHandler[] = [];
  private readonly messageHandlers: StanzaHandler[] = [];
  /** Run when a bound connection ends (abruptly or not), before its route is removed. */
  readonly onDisconnect: ConnHook[] = [];
  /**
   * Run after a connection's initial presence was broadcast (RFC 6121 §4.2): the moment
   * pending subscription requests and offline messages are delivered to it.
   */
  readonly onInitialPresence: ConnHook[] = [];
  /**
   * Run when an available connection's priority goes from negative to non-negative (RFC 6121
   * §8.5.2.1.1): from then on it gets messages sent to the bare JID, so what waited for such a
   * resource (offline messages, XEP-0160 §2) is delivered to it now, not at its next login.
   */
  readonly onPriorityRaised: ConnHook[] = [];
  /**
   * Run when a bind took a resource over from another connection (RFC 6120 §7.7.2.2), before
   * the bind is answered: whatever runs here is ordered before anything the new client sends.
   */
  readonly onTakeover: TakeoverHook[] = [];

  private static key(type: "get" | "set", ns: string, name: string): string {
    return `${type} ${ns} ${name}`;
  }

  /**
   * Registers a handler for iq get. By default it serves iqs with no `to`, to the server or to
   * the user's own bare JID; with `forOtherAccounts` also those sent to another local user's
   * bare JID, which the server answers on that account's behalf (RFC 6121 §8.5.3.1), so the
   * handler must look at `iq.attrs.to`.
   */
  get(ns: string, name: string, handler: IqHandler, options: IqHandlerOptions = {}): this {
    return this.register("get", ns, name, handler, options);
  }

  set(ns: string, name: string, handler: IqHandler, options: IqHandlerOptions = {}): this {
    return this.register("set", ns, name, handler, options);
  }

  private register(
    type: "get" | "set",
    ns: string,
    name: string,
    handler: IqHandler,
    options: IqHandlerOptions,
  ): this {
    const key = HandlerChain.key(type, ns, name);
    this.iqHandlers.set(key, handler);
    if (options.forOtherAccounts) this.forOtherAccounts.add(key);
    return this;
  }

  presence(handler: StanzaHandler): this {
    this.presenceHandlers.push(handler);
    return this;
  }

  message(handler: StanzaHandler): this {
    this.messageHandlers.push(handler);
    return this;
  }

  /** True when some handler serves (type, ns, name): used by disco to list features. */
  hasIq(type: "get" | "set", ns: string, name: string): boolean {
    return this.iqHandlers.has(HandlerChain.key(type, ns, name));
  }

  /** Handles an iq addressed to the server or a local account (`otherAccount`: not the sender's). */
  async handleIq(
    ctx: SessionContext,
    conn: ConnState,
    iq: Element,
    otherAccount = false,
  ): Promise<void> {
    const type = iq.attrs.type;
    if (isIqResponse(iq)) return; // nobody asked: dropped (RFC 6120 §8.2.3)
    const payloads = iq.getChildElements();
    let reply: Element;
    try {
      if ((type !== "get" && type !== "set") || payloads.length !== 1 || !iq.attrs.id)
        throw new StanzaError("bad-request", "modify", "an iq get/set has an id and one payload");
      const payload = payloads[0];
      const key = HandlerChain.key(type, payload.getNS() ?? "", payload.getName());
      const handler = this.iqHandlers.get(key);
      if (!handler || (otherAccount && !this.forOtherAccounts.has(key)))
        throw new StanzaError("service-unavailable");
      const result = await handler(ctx, conn, iq, payload);
      reply = new Element("iq", {
        type: "result",
        id: iq.attrs.id,
        from: iq.attrs.to,
        to: iq.attrs.from,
      });
      if (result) reply.cnode(result);
    } catch (err) {
      reply = errorReply(iq, asStanzaError(ctx, conn, err), ctx.domain);
    }
    ctx.send(conn, reply);
  }

  async handlePresence(ctx: SessionContext, conn: ConnState, presence: Element): Promise<void> {
    for (const handler of this.presenceHandlers) await handler(ctx, conn, presence);
  }

  async handleMessage(ctx: SessionContext, conn: ConnState, message: Element): Promise<void> {
    for (const handler of this.messageHandlers) await handler(ctx, conn, message);
  }
}

/**
 * The stanza error for a failed handler. Store failures are rethrown: the batch must fail and
 * be delivered again rather than answer with an error and acknowledge (isStoreError).
 */
export function asStanzaError(ctx: SessionContext, conn: ConnState, err: unknown): StanzaError {
  if (err instanceof StanzaError) return err;
  if (isStoreError(err)) throw err;
  ctx.log.error({ err, connId: conn.connId, jid: conn.bareJid }, "handler failed");
  return new StanzaError("internal-server-error");
}
