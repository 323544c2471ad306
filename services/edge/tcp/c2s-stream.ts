// One TCP c2s connection (RFC 6120 over TCP): the bytes the client sends are split into
// top-level elements (xml-splitter.ts) and handed to the session as RFC 7395 frames
// (stream-framing.ts); what the session writes comes back through tcp-client-socket.ts.
//
// TLS is the edge's alone, so the session stays transport-agnostic. On the STARTTLS port (RFC
// 6120 §5) the edge answers the first stream itself with a header and features offering only
// <starttls><required/></starttls>, answers <starttls/> with <proceed/> and starts TLS; anything
// else there is a policy-violation (§5.3.1: TLS is mandatory-to-negotiate). Only the stream the
// client opens over TLS reaches the session: its shard hears `open` then. On the direct TLS
// port (XEP-0368) TLS comes first and the first stream goes to the session. Neither port's
// session ever sees a byte that was not encrypted, and its `open` says the connection is TLS,
// with the channel-binding data SCRAM-*-PLUS needs (channel-binding.ts).
import type net from "node:net";
import tls from "node:tls";
import { NS_STREAMS, NS_TLS } from "../../shared/ns.js";
import type { CannedCloseName } from "../close-reasons.js";
import {
  announceConnection,
  closeConnection,
  openConnection,
  type LifecycleDeps,
} from "../connection-lifecycle.js";
import { channelBindings, type ChannelBindings } from "./channel-binding.js";
import { inboundFrameCostBytes } from "../frame-cost.js";
import { streamHeaderFrame } from "../stream-header.js";
import type { Connection } from "../ws/connection.js";
import { SLOW_CONSUMER_CLOSE_HEADROOM_BYTES } from "../ws/socket-behavior.js";
import {
  CLIENT_CLOSE_FRAME,
  inheritNamespaces,
  readClientHeader,
  readStartTag,
  type ClientStream,
} from "./stream-framing.js";
import { TcpClientSocket } from "./tcp-client-socket.js";
import type { TlsContexts } from "./tls-contexts.js";
import { SplitError, XmlSplitter, type SplitEvent } from "./xml-splitter.js";

/** XEP-0368 §4: the ALPN protocol name of direct TLS c2s. */
export const ALPN_XMPP_CLIENT = "xmpp-client";

/** How a port starts its streams. */
export type C2sMode =
  /** RFC 6120 §5: plain TCP, STARTTLS required before anything else. */
  | "starttls"
  /** XEP-0368: TLS from the first byte. */
  | "direct-tls"
  /** Plain TCP, no TLS offered (c2sRequireTls=false; tests and development only). */
  | "plain";

export interface C2sLimits {
  maxStanzaBytes: number;
  inboundFrameCostBytes: number;
  inboundBytesPerSecond: number;
  inboundBurstBytes: number;
  maxBackpressureBytes: number;
}

export interface C2sDeps extends LifecycleDeps {
  limits: C2sLimits;
  /** config.domain: names the server in the headers the edge writes itself. */
  domain: string;
  /** The certificates; required by the starttls and direct-tls modes. */
  tls: TlsContexts | undefined;
  end(conn: Connection, reason: CannedCloseName): void;
}

/** The features of the stream before TLS: nothing but STARTTLS, required (RFC 6120 §5.4.1). */
const STARTTLS_FEATURES =
  `<stream:features xmlns:stream="${NS_STREAMS}">` +
  `<starttls xmlns="${NS_TLS}"><required/></starttls></stream:features>`;
const PROCEED = `<proceed xmlns="${NS_TLS}"/>`;

/** Reading a client stops while this much of what was written to it waits in its buffer. */
const PAUSE_READING_BYTES = 64 * 1024;

type Phase =
  /** The edge answers (STARTTLS port, before TLS). */
  | "edge"
  /** The TLS handshake is running; nothing is read. */
  | "handshake"
  /** Frames go to the session. */
  | "session";

/** Takes a client socket just accepted (and admitted) on a c2s port. */
export function acceptC2s(
  raw: net.Socket,
  mode: C2sMode,
  clientAddress: string,
  deps: C2sDeps,
): Connection {
  const stream = new C2sStream(raw, mode, clientAddress, deps);
  return stream.conn;
}

class C2sStream {
  readonly conn: Connection;
  private readonly socket: TcpClientSocket;
  private splitter: XmlSplitter;
  private phase: Phase;
  private announced = false;
  private clientStream: ClientStream | undefined;
  /** Set once TLS is up: the session hears it (and these) in `open` (channel-binding.ts). */
  private tlsBindings: ChannelBindings | undefined;
  /** The client sent </stream:stream>. */
  private clientClosed = false;
  private readonly onData = (chunk: Buffer) => this.read(chunk);

  constructor(
    /** The TCP socket, under TLS once that starts. */
    private readonly raw: net.Socket,
    mode: C2sMode,
    clientAddress: string,
    private readonly deps: C2sDeps,
  ) {
    const { limits } = deps;
    this.socket = new TcpClientSocket(
      raw,
      {
        // As uWS's bound (socket-behavior.ts): the stanza that crossed maxBackpressureBytes
        // and the closing frames still fit behind what the client has not read.
        maxBufferedBytes:
          limits.maxBackpressureBytes + limits.maxStanzaBytes + SLOW_CONSUMER_CLOSE_HEADROOM_BYTES,
        pauseReadingBytes: Math.min(PAUSE_READING_BYTES, limits.maxBackpressureBytes),
      },
      () =>
        closeConnection(
          this.conn,
          this.clientClosed ? "client-closed" : "connection-lost",
          deps,
          this.announced,
        ),
    );
    this.conn = openConnection(this.socket, clientAddress, deps);
    this.splitter = new XmlSplitter(limits.maxStanzaBytes);
    this.watch(raw);
    if (mode === "direct-tls") {
      this.phase = "handshake";
      this.startTls(raw, true);
    } else {
      this.phase = mode === "starttls" ? "edge" : "session";
      raw.on("data", this.onData);
    }
  }

  private watch(socket: net.Socket): void {
    socket.on("error", (err) => {
      if (this.phase === "handshake") this.end("tls-failed");
      this.deps.log.debug({ err, connId: this.conn.id }, "c2s socket error");
    });
    socket.on("close", () => this.socket.closed());
  }

  private end(reason: CannedCloseName): void {
    this.deps.end(this.conn, reason);
  }

  private read(chunk: Buffer): void {
    const { conn, deps } = this;
    if (conn.closeReason !== undefined || this.socket.isEnded) return;
    const now = deps.now();
    // Any bytes, white space too, are activity (idle timeout) and pay their tokens.
    conn.lastInboundAtMs = now;
    deps.metrics.bytesIn.inc(chunk.length);
    if (!conn.bucket.take(chunk.length, now)) return this.end("rate-limited");
    try {
      this.splitter.push(chunk, (event) => this.onEvent(event, now));
    } catch (err) {
      if (!(err instanceof SplitError)) throw err;
      this.end(err.condition);
    }
  }

  /** Returns false to stop splitting (the connection ended, or TLS starts). */
  private onEvent(event: SplitEvent, now: number): boolean {
    if (this.conn.closeReason !== undefined) return false;
    this.deps.metrics.framesIn.inc();
    if (this.phase === "edge") return this.beforeTls(event);
    switch (event.kind) {
      case "header":
        this.clientStream = readClientHeader(event.tag);
        if (!this.announced) {
          this.announced = true;
          announceConnection(this.conn, this.deps, this.tlsBindings);
        }
        return this.publish(this.clientStream.open, now);
      case "element":
        // A header always comes first (the splitter refuses an element before one).
        return this.publish(inheritNamespaces(event.xml, this.clientStream as ClientStream), now);
      case "close":
        this.clientClosed = true;
        return this.publish(CLIENT_CLOSE_FRAME, now);
    }
  }

  /** The STARTTLS port's first stream, answered by the edge (RFC 6120 §5.4). */
  private beforeTls(event: SplitEvent): boolean {
    switch (event.kind) {
      case "header":
        readClientHeader(event.tag);
        this.socket.cork(() => {
          this.socket.send(streamHeaderFrame(this.deps.domain));
          this.socket.send(STARTTLS_FEATURES);
        });
        // The client has a stream header: a stream error now needs no other.
        this.conn.wroteSessionFrame = true;
        return true;
      case "element": {
        const tag = readStartTag(event.xml);
        const ns = tag.attrs.find((a) => a.name === "xmlns")?.value;
        if (tag.name !== "starttls" || ns !== NS_TLS) {
          this.end("tls-required");
          return false;
        }
        this.socket.send(PROCEED);
        // Whatever followed <starttls/> in this read was sent before TLS: it is dropped, never
        // read as if it had come over TLS (the STARTTLS command injection, CVE-2011-0411).
        this.startTls(this.raw, false);
        return false;
      }
      case "close":
        this.clientClosed = true;
        this.socket.send(CLIENT_CLOSE_FRAME);
        this.socket.end();
        return false;
    }
  }

  /**
   * Starts TLS over `raw` (RFC 6120 §5.4.3.3: right after <proceed/>; XEP-0368: at once). The
   * next stream is a new one: a new splitter, and no header has been written on it yet.
   */
  private startTls(raw: net.Socket, alpn: boolean): void {
    const contexts = this.deps.tls;
    if (!contexts) throw new Error("c2s TLS without certificates");
    raw.off("data", this.onData);
    this.phase = "handshake";
    const secure = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: contexts.contextFor(undefined),
      SNICallback: contexts.sniCallback,
      ALPNProtocols: alpn ? [ALPN_XMPP_CLIENT] : undefined,
    });
    this.socket.replace(secure);
    this.watch(secure);
    this.splitter = new XmlSplitter(this.deps.limits.maxStanzaBytes);
    this.conn.wroteSessionFrame = false;
    secure.once("secure", () => {
      this.tlsBindings = channelBindings(secure);
      this.phase = "session";
      secure.on("data", this.onData);
    });
  }

  /** One frame for the session: charged at least inboundFrameCostBytes in all (frame-cost.ts). */
  private publish(frame: string, now: number): boolean {
    const { conn, deps } = this;
    const bytes = Buffer.byteLength(frame);
    const cost = inboundFrameCostBytes(bytes, deps.limits.inboundFrameCostBytes);
    // The bytes themselves were charged as they arrived; a small frame pays the rest here.
    if (cost > bytes && !conn.bucket.take(cost - bytes, now)) {
      this.end("rate-limited");
      return false;
    }
    conn.dataFrames++;
    deps.publisher.publish(conn, { k: "data", c: conn.id, e: deps.address, d: frame }, cost);
    return conn.closeReason === undefined;
  }
}
