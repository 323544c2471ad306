// A real @xmpp/client user for end-to-end tests, with an inbox of every stanza it received
// and waits that resolve on an event (bounded by a timeout, never a sleep).
import { client, xml, type XmppClient } from "@xmpp/client";
import type { Element } from "ltx";
import WebSocket from "ws";
import { Inbox } from "./inbox.js";
import { preferMechanism } from "./sasl-scram-sha-256.js";

// @xmpp/websocket uses the global WebSocket, which Node 20 lacks (Node 22 has one).
const globals = globalThis as { WebSocket?: unknown };
globals.WebSocket ??= WebSocket;

export { xml };

export interface UserOptions {
  service: string;
  domain?: string;
  username: string;
  password: string;
  /** The resource (RFC 6120 binding), or Bind 2's <tag/> (the server adds "/<id>"). */
  resource?: string;
  mechanism?: "SCRAM-SHA-256" | "SCRAM-SHA-1" | "PLAIN";
  /**
   * "sasl2": XEP-0388 SASL2 with Bind 2 and FAST, which @xmpp/client prefers when offered.
   * "rfc6120" (the default): the client is not shown SASL2 and logs in with RFC 6120 SASL, a
   * stream restart and resource binding, so the resource is exactly `resource`.
   */
  login?: "rfc6120" | "sasl2";
  /** SASL2 <user-agent id/>: a client installation (keys FAST tokens, Bind 2's resource). */
  userAgentId?: string;
  /** A FAST token (from an earlier login's client: `fastToken()`) to log in with. */
  fastToken?: FastToken;
  /** Called with the client before it connects (to watch what it sends, say). */
  beforeStart?: (xmpp: XmppClient) => void;
}

/** A FAST token as @xmpp/client keeps it. */
export interface FastToken {
  mechanism: string;
  token: string;
  expiry: string;
}

const NS_STREAMS = "http://etherx.jabber.org/streams";
const NS_SASL2 = "urn:xmpp:sasl:2";

export class TestUser {
  private readonly received = new Inbox<Element>();
  /** Stream-level elements that are not stanzas (XEP-0198's <r/>, say). */
  private readonly nonzas = new Inbox<Element>();
  private constructor(readonly xmpp: XmppClient) {
    xmpp.on("stanza", (el: Element) => this.received.push(el));
    xmpp.on("nonza", (el: Element) => this.nonzas.push(el));
  }

  /** Stanzas received and not yet taken by waitFor, oldest first. */
  get inbox(): Element[] {
    return this.received.items;
  }

  static async connect(options: UserOptions): Promise<TestUser> {
    const xmpp = client({
      service: options.service,
      domain: options.domain ?? "localhost",
      username: options.username,
      password: options.password,
      resource: options.resource,
      ...(options.userAgentId === undefined
        ? {}
        : { userAgent: xml("user-agent", { id: options.userAgentId }) }),
    });
    xmpp.reconnect.stop();
    if ((options.login ?? "rfc6120") === "rfc6120") {
      // Before @xmpp/client's stream feature middleware sees them (it prefers SASL2).
      xmpp.prependListener("element", (el: Element) => {
        if (el.is("features", NS_STREAMS)) el.remove("authentication", NS_SASL2);
      });
    }
    if (options.fastToken) await xmpp.fast.saveToken(options.fastToken);
    options.beforeStart?.(xmpp);
    xmpp.on("error", () => undefined); // failures surface through start() and waits
    preferMechanism(xmpp, options.mechanism ?? "SCRAM-SHA-256");
    const user = new TestUser(xmpp);
    await xmpp.start();
    return user;
  }

  get jid(): string {
    return String(this.xmpp.jid);
  }

  /** The FAST token the server gave this client (XEP-0484), if any. */
  fastToken(): Promise<FastToken | undefined> {
    return this.xmpp.fast.fetchToken();
  }

  get bare(): string {
    return String(this.xmpp.jid?.bare());
  }

  send(el: Element): Promise<void> {
    return this.xmpp.send(el);
  }

  /** Takes the first stanza (already received or to come) that matches from the inbox. */
  waitFor(match: (el: Element) => boolean, what = "a stanza", timeoutMs = 5000): Promise<Element> {
    return this.received.take(
      match,
      () => `${this.jid} did not receive ${what} within ${timeoutMs} ms`,
      timeoutMs,
    );
  }

  /** Like waitFor, for an element that is not a stanza. */
  waitForNonza(match: (el: Element) => boolean, what: string, timeoutMs = 5000): Promise<Element> {
    return this.nonzas.take(
      match,
      () => `${this.jid} did not receive ${what} within ${timeoutMs} ms`,
      timeoutMs,
    );
  }

  /** Asserts that nothing matching arrives before `marker` resolves (a round trip, not a sleep). */
  async expectNone(match: (el: Element) => boolean, marker: () => Promise<unknown>): Promise<void> {
    await marker();
    const found = this.inbox.find(match);
    if (found) throw new Error(`${this.jid} unexpectedly received ${found.toString()}`);
  }

  /** A round trip to the server: every stanza sent before it has been processed. */
  ping(to?: string): Promise<Element> {
    return this.xmpp.iqCaller.request(
      xml("iq", { type: "get", to }, xml("ping", { xmlns: "urn:xmpp:ping" })),
    );
  }

  async stop(): Promise<void> {
    await this.xmpp.stop().catch(() => undefined);
  }

  /** Drops the socket without a word (no unavailable presence, no </close>). */
  kill(): void {
    const ws = this.xmpp.socket?.socket;
    if (ws?.terminate) ws.terminate();
    else ws?.close();
  }
}

export const isMessageFrom = (from: string, body?: string) => (el: Element) =>
  el.is("message") &&
  (el.attrs.from === from || el.attrs.from?.startsWith(from + "/")) &&
  (body === undefined || el.getChildText("body") === body);

export const isPresenceFrom = (from: string, type?: string) => (el: Element) =>
  el.is("presence") &&
  (el.attrs.from === from || el.attrs.from?.startsWith(from + "/")) &&
  el.attrs.type === type;

export type LoginOptions = Pick<UserOptions, "resource" | "mechanism">;

/**
 * Logs `username` in through `service` with the tests' password convention ("<name>-pw") and
 * adds the user to `users`, so the test's cleanup stops it.
 */
export async function loginAs(
  users: TestUser[],
  service: string,
  username: string,
  options: LoginOptions = {},
): Promise<TestUser> {
  const user = await TestUser.connect({
    service,
    username,
    password: `${username}-pw`,
    ...options,
  });
  users.push(user);
  return user;
}
