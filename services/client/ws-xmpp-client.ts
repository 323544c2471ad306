// An XMPP-over-WebSocket client (RFC 7395) for Megaphone's own tools: the load generator
// (`megaphone bench`) and the login probe (`megaphone probe login`, the chart's helm test).
// Raw frames, no XML parser: a frame is one top-level element, and the few a login waits for
// are told apart by their first bytes. Cheap enough that one process runs thousands of them.
import WebSocket from "ws";
import {
  htExchange,
  saslExchange,
  type ClientMechanism,
  type SaslExchange,
} from "./sasl-client.js";

const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const SASL2 = "urn:xmpp:sasl:2";
const BIND2 = "urn:xmpp:bind:0";
const FAST = "urn:xmpp:fast:0";
const HT = "HT-SHA-256-NONE";
const PING = "urn:xmpp:ping";
const SM = "urn:xmpp:sm:3";
/** The start of a stanza (XEP-0198 counts stanzas only, RFC 6120 §8). */
const STANZA = /^<(message|presence|iq)[\s/>]/;

/**
 * How a client logs in: "rfc6120" (SASL, stream restart, resource binding: three round trips
 * and a restart), "sasl2" (XEP-0388 SASL2 with Bind 2 in the same exchange) or "fast" (SASL2
 * with a XEP-0484 token: one message, no password work on either side).
 */
export type LoginMode = "rfc6120" | "sasl2" | "fast";

export interface LoginOptions {
  url: string;
  domain: string;
  username: string;
  password: string;
  mechanism: ClientMechanism;
  resource: string;
  /** Local source address (127.0.0.x) when one address runs short of ports. */
  localAddress?: string;
  /** Send initial presence and fetch the roster, as a client logging in does. */
  presenceAndRoster: boolean;
  timeoutMs: number;
  saltedCache?: Map<string, Buffer>;
  /** Told each step of the login as it succeeds (the probe prints them). */
  onStep?: (step: string) => void;
  /** "rfc6120" when omitted. */
  login?: LoginMode;
  /** SASL2 <user-agent id/>: the client installation (FAST tokens, Bind 2's resource). */
  userAgentId?: string;
  /** SASL2: ask for a FAST token (kept in `fastToken` after the login). */
  requestToken?: boolean;
  /** "fast": the token to log in with. */
  fastToken?: string;
  /** Answer the server's XEP-0199 pings (true when omitted; false plays a client that ignores them). */
  answerPings?: boolean;
  /**
   * XEP-0198: enable stream management with resumption after binding, as mobile clients do,
   * and answer the server's ack requests (<r/>) with the count of stanzas received. Off when
   * omitted.
   */
  streamManagement?: boolean;
}

/**
 * A failure on the way in, by the step that failed: connect, features, sasl (the message is
 * the RFC 6120 §6.5 condition), bind, roster, stream-error, closed, socket or timeout.
 */
export class LoginError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

type FrameWaiter = { match: (frame: string) => boolean; resolve: (frame: string) => void };

export class WsXmppClient {
  /** Called for every <message/> once logged in. */
  onMessage: (frame: string) => void = () => undefined;
  /** Called for every <presence/> once logged in. */
  onPresence: (frame: string) => void = () => undefined;
  /**
   * Called once when the connection ends not by this client's close() or terminate(): with the
   * failure kind (LoginError's), "stream-error <condition>" when the server ended the stream.
   */
  onClose: (kind: string) => void = () => undefined;
  jid = "";
  /** The FAST token the server issued at login (SASL2 with requestToken), if any. */
  fastToken: string | undefined;
  /** XEP-0199 pings from the server this client answered. */
  pingsAnswered = 0;
  /** XEP-0198 ack requests from the server this client answered. */
  acksAnswered = 0;
  /** XEP-0198: stanzas received since <enabled/> (§4 `h`); undefined while not enabled. */
  private handled: number | undefined;
  private readonly socket: WebSocket;
  private waiter: FrameWaiter | undefined;
  /** Frames that came before anyone waited for them (several arrive in one read). */
  private readonly early: string[] = [];
  private closedReason: string | undefined;
  private readonly opened: Promise<void>;
  private failOpen: (err: Error) => void = () => undefined;
  private failWaiter: (err: Error) => void = () => undefined;

  constructor(private readonly options: LoginOptions) {
    this.socket = new WebSocket(options.url, ["xmpp"], {
      perMessageDeflate: false,
      localAddress: options.localAddress,
      handshakeTimeout: options.timeoutMs,
    });
    this.opened = new Promise((resolve, reject) => {
      this.failOpen = reject;
      this.socket.once("open", () => resolve());
    });
    this.socket.on("message", (data: Buffer) => this.frame(data.toString("utf8")));
    this.socket.on("error", (err) => this.fail("socket", err.message));
    this.socket.on("close", (code) => this.fail("closed", `closed (${code})`));
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Opens the stream, authenticates, binds, and (optionally) sends presence and gets the roster. */
  async login(): Promise<void> {
    const o = this.options;
    const step = (text: string) => o.onStep?.(text);
    const timer = setTimeout(
      () => this.fail("timeout", `login took over ${o.timeoutMs} ms`),
      o.timeoutMs,
    );
    try {
      await this.opened.catch((err: Error) => {
        throw new LoginError("connect", `cannot connect: ${err.message}`);
      });
      step(`connected to ${o.url}`);
      if ((o.login ?? "rfc6120") === "rfc6120") await this.loginRfc6120(step);
      else await this.loginSasl2(step);
      if (o.streamManagement) {
        this.send(`<enable xmlns='${SM}' resume='true'/>`);
        const answer = await this.next((f) => /^<(enabled|failed)[\s/>]/.test(f));
        if (!answer.startsWith("<enabled")) throw new LoginError("sm", answer);
        step("stream management enabled (XEP-0198)");
      }
      if (o.presenceAndRoster) {
        this.send("<presence xmlns='jabber:client'/>");
        this.send(
          "<iq xmlns='jabber:client' type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>",
        );
        const roster = await this.next((f) => f.startsWith("<iq") && /id=['"]roster['"]/.test(f));
        if (!/type=['"]result['"]/.test(roster)) throw new LoginError("roster", roster);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** RFC 6120: SASL (§6), the stream restart, resource binding (§7). */
  private async loginRfc6120(step: (text: string) => void): Promise<void> {
    const o = this.options;
    await this.openStream((f) => f.includes("<mechanisms"));
    const sasl = saslExchange(o.mechanism, o.username, o.password, o.saltedCache);
    this.send(`<auth xmlns='${SASL}' mechanism='${o.mechanism}'>${sasl.initial()}</auth>`);
    const success = await this.saslOutcome(SASL, sasl);
    sasl.verify(textOf(success));
    step(`authenticated as ${o.username}@${o.domain} (${o.mechanism})`);
    await this.openStream((f) => f.includes("<bind"));
    this.send(
      `<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${o.resource}</resource></bind></iq>`,
    );
    const bound = await this.next((f) => f.startsWith("<iq") && /id=['"]bind['"]/.test(f));
    const jid = /<jid>([^<]+)<\/jid>/.exec(bound);
    if (!jid) throw new LoginError("bind", `bind failed: ${bound}`);
    this.jid = jid[1];
    step(`bound ${this.jid}`);
  }

  /** Answers a challenge (SCRAM has one) in namespace `ns`; the <success/>, or throws. */
  private async saslOutcome(ns: string, sasl: SaslExchange): Promise<string> {
    let answer = await this.next(isSaslAnswer);
    if (answer.startsWith("<challenge")) {
      this.send(`<response xmlns='${ns}'>${sasl.respond(textOf(answer))}</response>`);
      answer = await this.next(isSaslAnswer);
    }
    if (!answer.startsWith("<success")) {
      const condition = /<failure[^>]*>\s*<([a-z-]+)/.exec(answer)?.[1] ?? "failure";
      throw new LoginError("sasl", condition);
    }
    return answer;
  }

  /**
   * XEP-0388 SASL2 with XEP-0386 Bind 2 (tag = the resource) in one <authenticate/>: no restart,
   * no bind round trip; with a FAST token (XEP-0484) the whole exchange is one message.
   */
  private async loginSasl2(step: (text: string) => void): Promise<void> {
    const o = this.options;
    await this.openStream((f) => f.includes("<authentication"));
    const fast = o.login === "fast";
    if (fast && !o.fastToken) throw new LoginError("sasl", "no FAST token to log in with");
    const mechanism = fast ? HT : o.mechanism;
    const sasl = fast
      ? htExchange(o.username, o.fastToken as string)
      : saslExchange(o.mechanism, o.username, o.password, o.saltedCache);
    const agent = o.userAgentId ? `<user-agent id='${o.userAgentId}'/>` : "";
    const inline =
      `<bind xmlns='${BIND2}'><tag>${o.resource}</tag></bind>` +
      (fast ? `<fast xmlns='${FAST}'/>` : "") +
      (o.requestToken ? `<request-token xmlns='${FAST}' mechanism='${HT}'/>` : "");
    this.send(
      `<authenticate xmlns='${SASL2}' mechanism='${mechanism}'><initial-response>${sasl.initial()}</initial-response>${agent}${inline}</authenticate>`,
    );
    const answer = await this.saslOutcome(SASL2, sasl);
    sasl.verify(/<additional-data>([^<]*)</.exec(answer)?.[1] ?? "");
    const jid = /<authorization-identifier>([^<]+)</.exec(answer)?.[1] ?? "";
    if (!answer.includes("<bound") || !jid.includes("/"))
      throw new LoginError("bind", `Bind 2 failed: ${answer}`);
    this.fastToken = /<token [^>]*token=['"]([^'"]+)['"]/.exec(answer)?.[1] ?? this.fastToken;
    // The features of the bound stream follow <success/> (no restart).
    await this.next((f) => f.includes("features"));
    this.jid = jid;
    step(`authenticated as ${o.username}@${o.domain} (${mechanism}) and bound ${jid} (SASL2)`);
  }

  send(frame: string): void {
    this.socket.send(frame);
  }

  /** Bytes queued in the socket but not yet written: the bench's own backpressure signal. */
  get buffered(): number {
    return this.socket.bufferedAmount;
  }

  /**
   * Ends the stream cleanly. With XEP-0198, an unasked <a/> first (§4 allows one at any time):
   * a session ended with stanzas unacknowledged handles them as undeliverable (stored offline,
   * bounced), which would load the server after the run and reach the next login of the user.
   */
  close(): void {
    if (this.closedReason) return;
    this.closedReason = "closed by the bench";
    try {
      if (this.handled !== undefined) this.send(`<a xmlns='${SM}' h='${this.handled}'/>`);
      this.socket.send(`<close xmlns='${FRAMING}'/>`);
    } catch {
      // already closing
    }
    this.socket.close();
  }

  /** Ends the socket without a goodbye (for quick teardown of many clients). */
  terminate(): void {
    this.closedReason ??= "terminated by the bench";
    this.socket.terminate();
  }

  /**
   * RFC 6120 §4.6.1 whitespace keepalive: the edge counts it as activity (its idle timeout
   * ignores WebSocket pings) and drops it without waking the session.
   */
  keepalive(): void {
    if (!this.closedReason) this.socket.send(" ");
  }

  private async openStream(featuresMatch: (frame: string) => boolean): Promise<void> {
    this.send(`<open xmlns='${FRAMING}' to='${this.options.domain}' version='1.0'/>`);
    await this.next((f) => f.startsWith("<open"));
    const features = await this.next((f) => f.includes("features"));
    if (!featuresMatch(features)) throw new LoginError("features", `unexpected: ${features}`);
  }

  private next(match: (frame: string) => boolean): Promise<string> {
    const found = this.early.findIndex(match);
    if (found >= 0) return Promise.resolve(this.early.splice(0, found + 1)[found]);
    if (this.closedReason) return Promise.reject(new LoginError("closed", this.closedReason));
    return new Promise((resolve, reject) => {
      this.waiter = { match, resolve };
      this.failWaiter = reject;
    });
  }

  private frame(frame: string): void {
    if (this.handled !== undefined) {
      if (STANZA.test(frame)) this.handled++;
      else if (/^<r[\s/>]/.test(frame)) return this.answerAckRequest();
      else if (/^<a[\s/>]/.test(frame)) return; // the server's answer to an <r/> of ours
    } else if (frame.startsWith("<enabled")) this.handled = 0; // counted from here (§4)
    if (frame.startsWith("<message")) return this.onMessage(frame);
    if (frame.startsWith("<presence") && this.jid) return this.onPresence(frame);
    if (frame.startsWith("<iq") && frame.includes(PING) && this.options.answerPings !== false)
      return this.answerPing(frame);
    if (frame.startsWith("<close") || frame.includes("<stream:error") || frame.startsWith("<error"))
      return this.fail("stream-error", frame);
    const waiter = this.waiter;
    if (waiter?.match(frame)) {
      this.waiter = undefined;
      waiter.resolve(frame);
    } else if (!this.jid || this.waiter) {
      // During login only (bounded: a login reads a handful of frames).
      if (this.early.length < 64) this.early.push(frame);
    }
  }

  /**
   * XEP-0199 §4.1: the server pings a client silent for a while (its clientPingIntervalMs,
   * 120 s) and disconnects one that does not answer (connection-timeout), as a client would.
   */
  private answerPing(frame: string): void {
    if (!/type=['"]get['"]/.test(frame)) return;
    const id = /\sid=(['"])([^'"]*)\1/.exec(frame)?.[2] ?? "";
    const from = /\sfrom=(['"])([^'"]*)\1/.exec(frame)?.[2];
    const to = from === undefined ? "" : ` to='${from}'`;
    this.send(`<iq xmlns='jabber:client' type='result' id='${id}'${to}/>`);
    this.pingsAnswered++;
  }

  /** XEP-0198 §4: an <r/> is answered at once with the stanzas handled so far. */
  private answerAckRequest(): void {
    this.send(`<a xmlns='${SM}' h='${this.handled}'/>`);
    this.acksAnswered++;
  }

  private fail(kind: string, message: string): void {
    if (this.closedReason === undefined) {
      this.closedReason = message;
      this.onClose(kind === "stream-error" ? `${kind} ${streamErrorCondition(message)}` : kind);
    }
    this.failOpen(new LoginError(kind, message));
    if (this.waiter) {
      this.waiter = undefined;
      this.failWaiter(new LoginError(kind, message));
    }
  }
}

/**
 * The RFC 6120 §4.9.3 condition of a <stream:error/> frame and its text if any (the edge's idle
 * timeout and the session's unanswered ping are both connection-timeout), or "close" for a
 * plain <close/>.
 */
export function streamErrorCondition(frame: string): string {
  if (!frame.includes("<stream:error") && !frame.startsWith("<error")) return "close";
  const condition =
    /<([a-z-]+)\s+xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/.exec(frame)?.[1] ?? "unknown";
  const text = /<text[^>]*>([^<]*)<\/text>/.exec(frame)?.[1];
  return text ? `${condition} (${text})` : condition;
}

function isSaslAnswer(frame: string): boolean {
  return /^<(challenge|success|failure)/.test(frame);
}

/** The character data of a one-level element like <success>…</success> (empty if none). */
function textOf(frame: string): string {
  const start = frame.indexOf(">");
  const end = frame.lastIndexOf("</");
  return start >= 0 && end > start && !frame.endsWith("/>") ? frame.slice(start + 1, end) : "";
}
