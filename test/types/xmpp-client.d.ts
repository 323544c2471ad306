// Minimal typings for @xmpp/client 0.14 (the package ships none): what the tests use.
declare module "@xmpp/client" {
  import type { Element } from "ltx";
  import type { EventEmitter } from "node:events";

  export interface XmppJid {
    toString(): string;
    bare(): XmppJid;
    local: string;
    domain: string;
    resource: string;
  }

  export interface XmppClient extends EventEmitter {
    jid: XmppJid | null;
    status: string;
    start(): Promise<XmppJid>;
    stop(): Promise<void>;
    send(...elements: Element[]): Promise<void>;
    disconnect(timeoutMs?: number): Promise<void>;
    iqCaller: {
      request(el: Element, timeoutMs?: number): Promise<Element>;
      get(el: Element, to?: string, timeoutMs?: number): Promise<Element>;
      set(el: Element, to?: string, timeoutMs?: number): Promise<Element>;
    };
    iqCallee: {
      get(ns: string, name: string, handler: (ctx: unknown) => unknown): void;
      set(ns: string, name: string, handler: (ctx: unknown) => unknown): void;
    };
    reconnect: { stop(): void };
    saslFactory: {
      _mechs: { name: string; mech: { new (): unknown; prototype: { name: string } } }[];
      use(mech: { new (): unknown; prototype: { name: string } }): unknown;
    };
    socket: { socket?: { close(): void; terminate?(): void } } | null;
    /** XEP-0484: token storage hooks (in memory by default). */
    fast: {
      fetchToken(): Promise<{ mechanism: string; token: string; expiry: string } | undefined>;
      saveToken(token: { mechanism: string; token: string; expiry: string }): Promise<void>;
    };
  }

  export interface ClientOptions {
    service: string;
    domain: string;
    username?: string;
    password?: string;
    resource?: string;
    /** SASL2 <user-agent/> (a random id when omitted). */
    userAgent?: Element;
  }

  export function client(options: ClientOptions): XmppClient;
  export function xml(
    name: string,
    attrs?: Record<string, string | number | undefined> | null,
    ...children: (Element | string)[]
  ): Element;
}
