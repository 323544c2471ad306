// A raw RFC 7395 WebSocket client for tests that must send what no XMPP library would:
// malformed XML, binary frames, wrong subprotocols, stanzas out of order.
import WebSocket from "ws";
import { Inbox } from "./inbox.js";

export interface Closed {
  code: number;
  reason: string;
}

export class RawClient {
  readonly closed: Promise<Closed>;
  private readonly received = new Inbox<string>();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on("message", (data, isBinary) =>
      this.received.push(isBinary ? `<binary ${String(data)}>` : data.toString()),
    );
    ws.on("error", () => undefined);
  }

  /** Every frame received, in order. */
  get frames(): string[] {
    return this.received.items;
  }

  /** Resolves once the upgrade succeeded; rejects with the HTTP status when it was refused. */
  static connect(
    url: string,
    protocols: string[] = ["xmpp"],
    headers: Record<string, string> = {},
  ): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { headers });
      ws.once("open", () => resolve(new RawClient(ws)));
      ws.once("unexpected-response", (_req, res) => {
        reject(
          Object.assign(new Error(`upgrade refused: ${res.statusCode}`), {
            status: res.statusCode,
          }),
        );
        ws.terminate();
      });
      ws.once("error", (err) => reject(err));
    });
  }

  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  waitFrame(
    match: (frame: string) => boolean,
    what = "a frame",
    timeoutMs = 5000,
  ): Promise<string> {
    return this.received.waitFor(
      match,
      () => `no ${what} within ${timeoutMs} ms; got:\n${this.frames.join("\n")}`,
      timeoutMs,
    );
  }

  /** Waits for the socket to close, failing after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<Closed> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`socket still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  open(domain = "localhost"): void {
    this.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`);
  }

  /**
   * Authenticates with PLAIN and restarts the stream, stopping before binding (where an
   * XEP-0198 resumption goes instead); the frames before the restart are forgotten.
   */
  async authenticate(username: string, password: string): Promise<void> {
    this.open();
    await this.waitFrame(
      (f) => f.includes("<stream:features") && f.includes("mechanisms"),
      "SASL features",
    );
    const auth = Buffer.from(`\0${username}\0${password}`).toString("base64");
    this.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${auth}</auth>`);
    await this.waitFrame((f) => f.startsWith("<success"), "SASL success");
    this.frames.length = 0;
    this.open();
    await this.waitFrame(
      (f) => f.includes("<stream:features") && f.includes("bind"),
      "bind feature",
    );
  }

  /** Logs in with PLAIN and binds `resource`; returns the bound JID. */
  async login(username: string, password: string, resource = "raw"): Promise<string> {
    await this.authenticate(username, password);
    this.send(
      `<iq xmlns="jabber:client" type="set" id="bind1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`,
    );
    const bound = await this.waitFrame((f) => f.includes('id="bind1"'), "bind result");
    const jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1];
    if (!jid) throw new Error(`bind failed: ${bound}`);
    return jid;
  }

  /** Answers the server's XEP-0199 pings from now on, like a live client would. */
  answerPings(): void {
    this.ws.on("message", (data, isBinary) => {
      const frame = isBinary ? "" : data.toString();
      const id = /^<iq [^>]*type="get"[^>]*><ping xmlns="urn:xmpp:ping"\/>/.test(frame)
        ? /id="([^"]+)"/.exec(frame)?.[1]
        : undefined;
      if (id) this.send(`<iq xmlns="jabber:client" type="result" id="${id}" to="localhost"/>`);
    });
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

export const isStreamError = (condition: string) => (frame: string) =>
  frame.includes("<stream:error") && frame.includes(`<${condition} `);
