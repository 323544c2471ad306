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
  resource?: string;
  mechanism?: "SCRAM-SHA-256" | "SCRAM-SHA-1" | "PLAIN";
}

export class TestUser {
  private readonly received = new Inbox<Element>();
  private constructor(readonly xmpp: XmppClient) {
    xmpp.on("stanza", (el: Element) => this.received.push(el));
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
    });
    xmpp.reconnect.stop();
    xmpp.on("error", () => undefined); // failures surface through start() and waits
    preferMechanism(xmpp, options.mechanism ?? "SCRAM-SHA-256");
    const user = new TestUser(xmpp);
    await xmpp.start();
    return user;
  }

  get jid(): string {
    return String(this.xmpp.jid);
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
