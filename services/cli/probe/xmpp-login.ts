// RFC 7395 (XMPP over WebSocket) and RFC 6120 §6–7, client side, just far enough to prove that a
// deployment serves logins: open the stream, SASL SCRAM-SHA-256, restart, bind a resource, send
// initial presence (RFC 6121 §4.2) and wait for the server to send it back to this resource,
// which it does only once the presence went through a session and its routing. Then close.
// Uses the WebSocket client of Node itself (Node 20: `--experimental-websocket`), so the image
// needs no client library.
import { createElement, parse, type Element } from "ltx";
import { NS_BIND, NS_CLIENT, NS_FRAMING, NS_SASL } from "../../shared/ns.js";
import { ScramSha256Client } from "./scram-client.js";

export interface LoginOptions {
  /** ws:// or wss:// URL of the XMPP WebSocket endpoint. */
  url: string;
  /** The account, user@domain. */
  jid: string;
  password: string;
  resource: string;
  /** The whole exchange must finish within this long. */
  timeoutMs: number;
  /** Called with each step as it completes, for the probe's log. */
  onStep?: (step: string) => void;
}

/** A failed login: `step` names what was being done, for the message. */
export class LoginError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(`${step}: ${message}`);
    this.name = "LoginError";
  }
}

/** Frames as they arrive, taken one at a time by what the exchange expects next. */
class FrameQueue {
  private readonly frames: Element[] = [];
  private waiter: ((frame: Element | Error) => void) | undefined;
  private failure: Error | undefined;

  push(frame: Element): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(frame);
    } else this.frames.push(frame);
  }

  fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(err);
  }

  next(): Promise<Element> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = (f) => (f instanceof Error ? reject(f) : resolve(f));
    });
  }
}

function requireWebSocket(): typeof WebSocket {
  if (typeof globalThis.WebSocket !== "function")
    throw new LoginError(
      "connect",
      "this Node has no WebSocket client: run it with --experimental-websocket (Node 20), or NODE_OPTIONS=--experimental-websocket",
    );
  return globalThis.WebSocket;
}

function describe(frame: Element): string {
  const text = frame.toString();
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** Logs in and closes the stream; resolves with the bound full JID, rejects with LoginError. */
export async function login(options: LoginOptions): Promise<string> {
  const WS = requireWebSocket();
  const [, domain] = options.jid.split("@");
  const username = options.jid.slice(0, options.jid.indexOf("@"));
  if (!username || !domain)
    throw new LoginError("arguments", `"${options.jid}" is not user@domain`);
  const step = (s: string) => options.onStep?.(s);
  let current = "connect";

  const frames = new FrameQueue();
  const ws = new WS(options.url, ["xmpp"]);
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error(`cannot connect to ${options.url}`)), {
      once: true,
    });
  });
  ws.addEventListener("message", (event: MessageEvent) => {
    try {
      frames.push(parse(String(event.data)));
    } catch (err) {
      frames.fail(new Error(`unparsable frame: ${(err as Error).message}`));
    }
  });
  ws.addEventListener("close", (event: { code: number; reason: string }) =>
    frames.fail(new Error(`the server closed the socket (${event.code} ${event.reason})`)),
  );
  const send = (el: Element) => ws.send(el.toString());
  const expect = async (what: string, match: (f: Element) => boolean): Promise<Element> => {
    const frame = await frames.next();
    if (frame.is("error") || frame.is("close", NS_FRAMING))
      throw new Error(`stream ended instead of ${what}: ${describe(frame)}`);
    if (!match(frame)) throw new Error(`expected ${what}, got ${describe(frame)}`);
    return frame;
  };
  const openStream = async (): Promise<Element> => {
    send(createElement("open", { xmlns: NS_FRAMING, to: domain, version: "1.0" }));
    await expect("<open/>", (f) => f.is("open", NS_FRAMING));
    return expect("<stream:features/>", (f) => f.getName() === "features");
  };

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
  });
  const exchange = async (): Promise<string> => {
    await opened;
    step(`connected to ${options.url}`);

    current = "stream";
    const features = await openStream();
    const mechanisms = (
      features.getChild("mechanisms", NS_SASL)?.getChildren("mechanism") ?? []
    ).map((m) => m.getText());
    current = "sasl";
    const scram = new ScramSha256Client(username, options.password);
    if (!mechanisms.includes(scram.mechanism))
      throw new Error(
        `the server offers ${mechanisms.join(", ") || "no mechanism"}, not ${scram.mechanism}`,
      );
    send(
      createElement(
        "auth",
        { xmlns: NS_SASL, mechanism: scram.mechanism },
        Buffer.from(scram.first()).toString("base64"),
      ),
    );
    const saslFrame = (f: Element) => f.getNS() === NS_SASL;
    const challenge = await expect("a SASL challenge", saslFrame);
    if (challenge.is("failure")) throw new Error(`refused: ${describe(challenge)}`);
    const serverFirst = Buffer.from(challenge.getText(), "base64").toString();
    send(
      createElement(
        "response",
        { xmlns: NS_SASL },
        Buffer.from(scram.final(serverFirst)).toString("base64"),
      ),
    );
    const outcome = await expect("SASL success", saslFrame);
    if (!outcome.is("success")) {
      const condition = outcome.getChildElements()[0]?.getName() ?? "unknown";
      throw new Error(`${condition}: ${describe(outcome)}`);
    }
    if (!scram.verify(Buffer.from(outcome.getText(), "base64").toString()))
      throw new Error("the server's signature does not match: it does not know this password");
    step(`authenticated as ${options.jid} (${scram.mechanism})`);

    current = "bind";
    const restarted = await openStream();
    if (!restarted.getChild("bind", NS_BIND)) throw new Error("no resource binding offered");
    send(
      createElement(
        "iq",
        { xmlns: NS_CLIENT, type: "set", id: "bind-1" },
        createElement("bind", { xmlns: NS_BIND }, createElement("resource", {}, options.resource)),
      ),
    );
    const bound = await expect("the bind result", (f) => f.is("iq") && f.attrs.id === "bind-1");
    const fullJid = bound.getChild("bind", NS_BIND)?.getChildText("jid");
    if (bound.attrs.type !== "result" || !fullJid) throw new Error(`refused: ${describe(bound)}`);
    step(`bound ${fullJid}`);

    current = "presence";
    send(createElement("presence", { xmlns: NS_CLIENT }));
    for (;;) {
      const frame = await frames.next();
      if (frame.is("presence") && frame.attrs.from === fullJid && frame.attrs.type === undefined)
        break;
      if (frame.is("error") || frame.is("close", NS_FRAMING))
        throw new Error(`stream ended before the presence came back: ${describe(frame)}`);
    }
    step("initial presence sent and received back");

    current = "close";
    send(createElement("close", { xmlns: NS_FRAMING }));
    return fullJid;
  };
  try {
    return await Promise.race([exchange(), timeout]);
  } catch (err) {
    throw new LoginError(current, (err as Error).message);
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}
