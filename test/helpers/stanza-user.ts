// A StanzaJS 12 client for interop tests: a second XMPP library, independent of @xmpp/client,
// talking RFC 7395 to an edge. It keeps every raw frame both ways (for failure messages and
// findings), an inbox of the stanzas it received, and waits that resolve on StanzaJS events
// (bounded by a timeout, never a sleep).
import * as XMPP from "stanza";
import { Inbox } from "./inbox.js";

export type Agent = XMPP.Agent;
export type Mechanism = "SCRAM-SHA-256" | "SCRAM-SHA-1" | "PLAIN";
type Events = XMPP.AgentEvents;
type Message = XMPP.Stanzas.ReceivedMessage;
type Presence = XMPP.Stanzas.ReceivedPresence;
type IQ = XMPP.Stanzas.ReceivedIQ;
export type RosterPush = XMPP.Stanzas.IQ & { roster: XMPP.Stanzas.Roster };

/** Every mechanism StanzaJS 12 registers (Client.js); forcing one disables all the others. */
const STANZA_MECHANISMS = [
  "EXTERNAL",
  "SCRAM-SHA-256-PLUS",
  "SCRAM-SHA-256",
  "SCRAM-SHA-1-PLUS",
  "SCRAM-SHA-1",
  "DIGEST-MD5",
  "OAUTHBEARER",
  "X-OAUTH2",
  "PLAIN",
  "ANONYMOUS",
];

export interface StanzaUserOptions {
  url: string;
  jid: string;
  password: string;
  resource?: string;
  /** Leave StanzaJS only this mechanism (it has no config option for it: `sasl.disable`). */
  mechanism?: Mechanism;
  /** false: StanzaJS does not enable XEP-0198, which it does by default when offered. */
  streamManagement?: boolean;
  timeoutMs?: number;
}

export interface RawFrame {
  direction: "in" | "out";
  data: string;
}

/** Resolves with the first `event` whose payload matches, rejects after `timeoutMs`. */
export function once<E extends keyof Events>(
  client: Agent,
  event: E,
  timeoutMs = 5000,
  match: (payload: Events[E]) => boolean = () => true,
): Promise<Events[E]> {
  return new Promise((resolve, reject) => {
    // StanzaJS's StrictEventEmitter types listeners per event; one untyped view for add/remove.
    const emitter = client as unknown as {
      on(e: string, l: (p: Events[E]) => void): void;
      off(e: string, l: (p: Events[E]) => void): void;
    };
    const listener = (payload: Events[E]) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(payload);
    };
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`StanzaJS ${client.config.jid}: no '${String(event)}' in ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.on(event, listener);
  });
}

/** Resolves with the name of whichever of `events` fires first, rejects after `timeoutMs`. */
export function first(client: Agent, events: (keyof Events)[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const emitter = client as unknown as {
      on(e: string, l: () => void): void;
      off(e: string, l: () => void): void;
    };
    const listeners = events.map((event) => {
      const listener = () => settle(() => resolve(String(event)));
      emitter.on(event, listener);
      return { event, listener };
    });
    const settle = (then: () => void) => {
      clearTimeout(timer);
      for (const { event, listener } of listeners) emitter.off(event, listener);
      then();
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(new Error(`StanzaJS ${client.config.jid}: none of ${events} in ${timeoutMs} ms`)),
        ),
      timeoutMs,
    );
  });
}

type Received =
  | { kind: "message"; stanza: Message }
  | { kind: "presence"; stanza: Presence }
  | { kind: "iq"; stanza: IQ }
  | { kind: "roster:update"; stanza: RosterPush };

export class StanzaUser {
  /** Stanzas received, in order. */
  get inbox(): Received[] {
    return this.received.items;
  }

  readonly frames: RawFrame[] = [];
  private readonly received = new Inbox<Received>();
  /** SASL mechanisms the server offered in its first stream features. */
  offeredMechanisms: string[] = [];
  /** The JID StanzaJS's `session:started` event carried. */
  startedWith: string | undefined;

  private constructor(
    readonly client: Agent,
    readonly timeoutMs: number,
  ) {
    client.on("session:started", (jid) => (this.startedWith = jid ?? undefined));
    client.on("raw:incoming", (data) => this.frames.push({ direction: "in", data }));
    client.on("raw:outgoing", (data) => this.frames.push({ direction: "out", data }));
    client.on("features", (features) => {
      if (features.sasl) this.offeredMechanisms = features.sasl.mechanisms;
    });
    client.on("message", (stanza) => this.receive({ kind: "message", stanza }));
    client.on("presence", (stanza) => this.receive({ kind: "presence", stanza }));
    client.on("iq", (stanza) => this.receive({ kind: "iq", stanza }));
    client.on("roster:update", (stanza) => this.receive({ kind: "roster:update", stanza }));
  }

  /** Connects and resolves once StanzaJS reports `session:started` (SASL, bind done). */
  static async connect(options: StanzaUserOptions): Promise<StanzaUser> {
    const timeoutMs = options.timeoutMs ?? 10000;
    const client = XMPP.createClient({
      jid: options.jid,
      password: options.password,
      resource: options.resource,
      transports: { websocket: options.url, bosh: false },
      timeout: Math.ceil(timeoutMs / 1000), // IQ timeout, in seconds
      useStreamManagement: options.streamManagement ?? true,
    });
    if (options.mechanism)
      for (const name of STANZA_MECHANISMS)
        if (name !== options.mechanism) client.sasl.disable(name);
    const user = new StanzaUser(client, timeoutMs);
    const outcome = first(client, ["session:started", "auth:failed", "disconnected"], timeoutMs);
    client.connect();
    let event: string;
    try {
      event = await outcome;
    } catch (err) {
      await user.stop();
      throw new Error(`${(err as Error).message}\n${user.trace()}`);
    }
    if (event !== "session:started") {
      // After a SASL <failure/> StanzaJS closes the stream itself: let it finish, bounded.
      if (event === "auth:failed" && client.transport)
        await once(client, "disconnected", timeoutMs).catch(() => undefined);
      await user.stop();
      throw Object.assign(new Error(`StanzaJS ${options.jid}: ${event}\n${user.trace()}`), {
        event,
      });
    }
    return user;
  }

  get jid(): string {
    return this.client.jid;
  }

  /** The mechanism StanzaJS chose, from its <auth mechanism=…> frame. */
  get negotiatedMechanism(): string | undefined {
    for (const f of this.frames) {
      const m = f.direction === "out" && /<auth\b[^>]*\bmechanism="([^"]+)"/.exec(f.data);
      if (m) return m[1];
    }
    return undefined;
  }

  private receive(r: Received): void {
    this.received.push(r);
  }

  private waitReceived(match: (r: Received) => boolean, what: string): Promise<Received> {
    return this.received.waitFor(
      match,
      () => `${this.jid} did not receive ${what} in ${this.timeoutMs} ms:\n${this.trace()}`,
      this.timeoutMs,
    );
  }

  async message(match: (m: Message) => boolean, what = "a message"): Promise<Message> {
    const r = await this.waitReceived((r) => r.kind === "message" && match(r.stanza), what);
    return r.stanza as Message;
  }

  async presence(match: (p: Presence) => boolean, what = "a presence"): Promise<Presence> {
    const r = await this.waitReceived((r) => r.kind === "presence" && match(r.stanza), what);
    return r.stanza as Presence;
  }

  async rosterPush(match: (p: RosterPush) => boolean, what = "a roster push"): Promise<RosterPush> {
    const r = await this.waitReceived((r) => r.kind === "roster:update" && match(r.stanza), what);
    return r.stanza as RosterPush;
  }

  /** Error stanzas and stream errors either way: each one is an interop finding. */
  errorFrames(): RawFrame[] {
    return this.frames.filter(
      (f) =>
        /^<(iq|message|presence)\b[^>]*\btype=["']error["']/.test(f.data) ||
        /<(stream:)?error\b/.test(f.data.slice(0, 40)),
    );
  }

  /** The raw conversation, for failure messages. */
  trace(): string {
    return this.frames.map((f) => `${f.direction === "in" ? "S:" : "C:"} ${f.data}`).join("\n");
  }

  /** Clean disconnect (StanzaJS sends <close/> and waits for the server's), bounded. */
  async stop(): Promise<void> {
    if (!this.client.transport) return;
    const gone = once(this.client, "disconnected", this.timeoutMs);
    this.client.disconnect();
    try {
      await gone;
    } finally {
      this.client.transport?.disconnect(false); // drop the socket if the server never answered
    }
  }
}
