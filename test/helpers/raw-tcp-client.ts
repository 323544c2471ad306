// A raw XMPP-over-TCP client for tests that must send what no XMPP library would (stanzas
// before STARTTLS, malformed or oversized XML, nothing at all): it writes text as given and
// keeps everything the server wrote as one string.
import net from "node:net";
import tls from "node:tls";

export const NS_STREAMS = "http://etherx.jabber.org/streams";
export const CLIENT_HEADER =
  "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en'" +
  ` xmlns='jabber:client' xmlns:stream='${NS_STREAMS}'>`;
export const STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

export class RawTcpClient {
  /** Everything received on the current stream (reset by startTls), decoded as UTF-8. */
  text = "";
  private waiters: (() => void)[] = [];
  private ended = false;
  private endWaiters: (() => void)[] = [];

  private constructor(private socket: net.Socket) {
    this.watch(socket);
  }

  /**
   * Plain TCP to `port`, or TLS when `ca` is given (direct TLS, XEP-0368); `options` adds to
   * the TLS ones (e.g. maxVersion).
   */
  static connect(
    port: number,
    ca?: string,
    alpn?: string[],
    options: tls.ConnectionOptions = {},
  ): Promise<RawTcpClient> {
    return new Promise((resolve, reject) => {
      const socket = ca
        ? tls.connect({
            port,
            host: "127.0.0.1",
            servername: "localhost",
            ca,
            ALPNProtocols: alpn,
            ...options,
          })
        : net.connect({ port, host: "127.0.0.1" });
      socket.once(ca ? "secureConnect" : "connect", () => {
        socket.off("error", reject);
        resolve(new RawTcpClient(socket));
      });
      socket.once("error", reject);
    });
  }

  private watch(socket: net.Socket): void {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.text += chunk;
      for (const wake of this.waiters.splice(0)) wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.ended = true;
      for (const wake of [...this.waiters.splice(0), ...this.endWaiters.splice(0)]) wake();
    });
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Resolves once what was received matches; fails after `timeoutMs` showing what came. */
  async waitText(
    match: (text: string) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!match(this.text)) {
      if (this.ended) throw new Error(`closed before ${what}; got:\n${this.text}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; got:\n${this.text}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.text;
  }

  /** Waits for the server to close the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.ended) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`connection still open after ${timeoutMs} ms; got:\n${this.text}`)),
        timeoutMs,
      );
      this.endWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Opens the stream (with `header`) and negotiates STARTTLS as RFC 6120 §5.4 says, naming
   * `servername` (SNI) and trusting `ca`.
   */
  async startTls(ca: string, servername = "localhost", header = CLIENT_HEADER): Promise<void> {
    this.send(header);
    await this.waitText((t) => t.includes("</stream:features>"), "STARTTLS features");
    this.send(STARTTLS);
    await this.waitText((t) => t.includes("<proceed"), "<proceed/>");
    const plain = this.socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secure = tls.connect({ socket: plain, servername, ca });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    this.socket = secure;
    this.text = "";
    this.watch(secure);
  }

  /**
   * Opens a stream and logs in with PLAIN, then binds `resource` (on a stream where the
   * session offers PLAIN); returns the bound JID. `text` is reset after each restart.
   */
  async login(username: string, password: string, resource = "raw"): Promise<string> {
    this.text = "";
    this.send(CLIENT_HEADER);
    await this.waitText((t) => t.includes("<mechanism>PLAIN</mechanism>"), "PLAIN offered");
    const auth = Buffer.from(`\0${username}\0${password}`).toString("base64");
    this.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${auth}</auth>`);
    await this.waitText((t) => t.includes("<success"), "SASL success");
    this.text = "";
    this.send(CLIENT_HEADER);
    await this.waitText((t) => t.includes("urn:ietf:params:xml:ns:xmpp-bind"), "bind feature");
    this.send(
      `<iq type="set" id="bind1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`,
    );
    const bound = await this.waitText((t) => t.includes("</jid>"), "bind result");
    const jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1];
    if (!jid) throw new Error(`bind failed: ${bound}`);
    return jid;
  }

  /** Stops reading (the kernel's buffers, then the server's, fill up). */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A stream error with `condition` was received. */
export const hasStreamError = (condition: string) => (text: string) =>
  new RegExp(`<stream:error[^>]*><${condition} `).test(text);
