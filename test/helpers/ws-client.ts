// A WebSocket client for tests (the `ws` package). It records every message and the close,
// and lets a test wait for them without sleeping.
import type { ClientRequest, IncomingMessage } from "node:http";
import WebSocket from "ws";

export interface ClientOptions {
  /** Offered in Sec-WebSocket-Protocol; default ["xmpp"]. */
  protocols?: string[];
  origin?: string;
  /** Extra request headers (e.g. X-Forwarded-For). */
  headers?: Record<string, string>;
  /** Local address to connect from (any 127.x.y.z works on loopback): a distinct client address. */
  localAddress?: string;
}

function socketOf(url: string, options: ClientOptions): WebSocket {
  return new WebSocket(url, options.protocols ?? ["xmpp"], {
    origin: options.origin,
    headers: options.headers,
    localAddress: options.localAddress,
  });
}

export interface CloseEvent {
  code: number;
  reason: string;
}

export interface Refusal {
  status: number;
  body: string;
}

export class TestClient {
  readonly messages: string[] = [];
  readonly closed: Promise<CloseEvent>;
  private changed: (() => void)[] = [];

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      this.messages.push(data.toString("utf8"));
      this.notify();
    });
    this.closed = new Promise((resolve) =>
      socket.on("close", (code: number, reason: Buffer) => {
        resolve({ code, reason: reason.toString("utf8") });
        this.notify();
      }),
    );
    socket.on("error", () => {
      // Reported through `close`; a test that expects an error looks at the close code.
    });
  }

  /** Opens a socket; rejects with the HTTP status if the server refuses the upgrade. */
  static connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
    const socket = socketOf(url, options);
    return new Promise((resolve, reject) => {
      socket.once("open", () => resolve(new TestClient(socket)));
      socket.once("unexpected-response", (req: ClientRequest, res: IncomingMessage) => {
        req.destroy();
        reject(new Error(`upgrade refused with ${res.statusCode}`));
      });
      socket.once("error", reject);
    });
  }

  /** Attempts an upgrade the server must refuse, and returns its answer. */
  static refused(url: string, options: ClientOptions = {}): Promise<Refusal> {
    const socket = socketOf(url, options);
    socket.on("error", () => {});
    return new Promise((resolve, reject) => {
      socket.once("open", () => {
        socket.terminate();
        reject(new Error("the upgrade was accepted"));
      });
      socket.once("unexpected-response", (req: ClientRequest, res: IncomingMessage) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
    });
  }

  get protocol(): string {
    return this.socket.protocol;
  }

  /** The socket is open: the client has neither sent nor received a close frame yet. */
  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(text: string): void {
    this.socket.send(text);
  }

  sendBinary(data: Buffer): void {
    this.socket.send(data, { binary: true });
  }

  close(code = 1000): void {
    this.socket.close(code);
  }

  terminate(): void {
    this.socket.terminate();
  }

  /** A WebSocket ping frame (RFC 6455 §5.5.2); the server answers it with a pong. */
  ping(): void {
    this.socket.ping();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Resolves with the first `count` messages once they have arrived. */
  async waitForMessages(count: number, timeoutMs = 5000): Promise<string[]> {
    await this.until(() => this.messages.length >= count, timeoutMs, `${count} messages`);
    return this.messages.slice(0, count);
  }

  /** Resolves with the close event, failing after `timeoutMs`. */
  async waitForClose(timeoutMs = 5000): Promise<CloseEvent> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("socket not closed in time")), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.changed = this.changed.filter((c) => c !== check);
        reject(new Error(`timed out waiting for ${what} (have ${this.messages.length})`));
      }, timeoutMs);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.changed = this.changed.filter((c) => c !== check);
        resolve();
      };
      this.changed.push(check);
    });
  }

  private notify(): void {
    for (const check of [...this.changed]) check();
  }
}
