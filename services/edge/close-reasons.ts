// Every way an edge socket ends, as a table (STYLE §2.9). The edge never parses XMPP, so the
// only XMPP it ever writes on its own is one of these canned frame sequences (after its own
// stream header when the session has not written one yet, stream-header.ts). RFC 7395 §3.6: a
// server that ends a stream because of an error sends <stream:error/> and then <close/>, and
// then closes the WebSocket; the reason name travels as the WebSocket close reason and as the
// `d` of the `close` packet to the session.
import { NS_FRAMING, NS_STREAM_ERRORS, NS_STREAMS } from "../shared/ns.js";
import type { StreamErrorCondition } from "../shared/xmpp-errors.js";

/**
 * The WebSocket close codes the edge uses (RFC 6455 §7.4.1) and what each tells a client:
 * - NORMAL: the stream ended as agreed (the session closed it, or it sat idle); reconnect when
 *   there is something to do.
 * - GOING_AWAY: this edge is stopping (`drain`); reconnect now (to another edge) and resume
 *   (XEP-0198).
 * - UNSUPPORTED_DATA / POLICY_VIOLATION: the client broke a rule (binary frame, size, rate,
 *   handshake time); retrying unchanged will fail again.
 * - INTERNAL_ERROR: the edge could not carry the stream; reconnect with backoff and resume.
 * - TRY_AGAIN_LATER: overload (this client or this edge); reconnect with backoff and resume.
 * ABNORMAL is never sent: it is how a close without a close frame is reported.
 */
export const WS_CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
} as const;

export type WsCloseCode = (typeof WS_CLOSE)[keyof typeof WS_CLOSE];

/** Log level of a close: warn when a client misbehaved or a limit was hit (log.ts). */
export type CloseLogLevel = "debug" | "warn" | "error";

export interface CannedClose {
  code: WsCloseCode;
  /** The stream error sent before <close/>; none when the stream ends without error. */
  streamError?: StreamErrorCondition;
  text: string;
  level: CloseLogLevel;
}

/** Closes the edge initiates. */
export const CANNED_CLOSES = {
  /** A binary WebSocket frame: RFC 7395 §3.2 carries XMPP in text frames only. */
  "binary-frame": {
    code: WS_CLOSE.UNSUPPORTED_DATA,
    streamError: "unsupported-encoding",
    text: "XMPP over WebSocket uses text frames only (RFC 7395)",
    level: "warn",
  },
  /** A message larger than maxStanzaBytes (RFC 6120 §13.12). */
  "policy-violation": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "policy-violation",
    text: "stanza larger than the server's size limit",
    level: "warn",
  },
  /**
   * The connection's inbound token bucket ran dry (inboundBytesPerSecond, inboundBurstBytes;
   * each frame costs at least inboundFrameCostBytes, frame-cost.ts).
   */
  "rate-limited": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "policy-violation",
    text: "inbound rate limit exceeded",
    level: "warn",
  },
  /** No message from the client for idleTimeoutMs (WebSocket pings do not count). */
  idle: {
    code: WS_CLOSE.NORMAL,
    streamError: "connection-timeout",
    text: "idle for too long",
    level: "debug",
  },
  /** No first frame (<open/>) within handshakeTimeoutMs. */
  "handshake-timeout": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "connection-timeout",
    text: "no stream header in time",
    level: "warn",
  },
  /** The client does not read: its output passed maxBackpressureBytes (frames are never dropped silently). */
  "slow-consumer": {
    code: WS_CLOSE.TRY_AGAIN_LATER,
    streamError: "resource-constraint",
    text: "client does not read fast enough",
    level: "warn",
  },
  /** The cost of frames held while the edge was paused passed inboundBurstBytes (publisher.ts). */
  overloaded: {
    code: WS_CLOSE.TRY_AGAIN_LATER,
    streamError: "resource-constraint",
    text: "server overloaded, try again later",
    level: "warn",
  },
  // What only a TCP c2s edge sees (tcp/): it splits the XML stream itself (tcp/xml-splitter.ts)
  // and negotiates TLS itself, before any session is involved. The codes are unused on TCP.
  /** Malformed XML or bad UTF-8 in the stream (RFC 6120 §4.9.3.13, §11.6). */
  "not-well-formed": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "not-well-formed",
    text: "malformed XML",
    level: "warn",
  },
  /** A comment, processing instruction or DTD (RFC 6120 §11.1). */
  "restricted-xml": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "restricted-xml",
    text: "comments, processing instructions and DTDs are not allowed",
    level: "warn",
  },
  /** A stream header outside the streams namespace or not for jabber:client (RFC 6120 §4.9.3.10). */
  "invalid-namespace": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "invalid-namespace",
    text: "expected a jabber:client stream in the streams namespace",
    level: "warn",
  },
  /** A stream header whose prefix is not declared (RFC 6120 §4.9.3.2). */
  "bad-namespace-prefix": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "bad-namespace-prefix",
    text: "the stream prefix is not declared",
    level: "warn",
  },
  /**
   * Anything but <starttls/> on a plain c2s stream where TLS is mandatory-to-negotiate
   * (RFC 6120 §5.3.1; c2sRequireTls).
   */
  "tls-required": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "policy-violation",
    text: "use STARTTLS first",
    level: "warn",
  },
  /**
   * The TLS handshake failed: RFC 6120 §5.4.3.2, the TCP connection is closed, nothing sent.
   * Logged at debug: a public TLS port sees scanners all day; closes_total counts them.
   */
  "tls-failed": { code: WS_CLOSE.POLICY_VIOLATION, text: "", level: "debug" },
  /** A TCP connection refused when it arrives (admission, capacity): see tcp/refusal.ts. */
  "address-limit": {
    code: WS_CLOSE.POLICY_VIOLATION,
    streamError: "policy-violation",
    text: "too many connections from your address, retry later",
    level: "debug",
  },
  /** A TCP connection arriving while the edge stops. */
  stopping: {
    code: WS_CLOSE.GOING_AWAY,
    streamError: "system-shutdown",
    text: "server shutting down",
    level: "debug",
  },
  /** The session sent a `close` packet; it has already written its own </close> frames. */
  "session-closed": { code: WS_CLOSE.NORMAL, text: "", level: "debug" },
  /**
   * The edge is stopping (SIGTERM, scale-down, rolling update; drain.ts). Deliberately no
   * stream error and no <close/>: the XMPP stream is left unfinished, as after a lost
   * transport, so that a client with stream management resumes through another edge
   * (XEP-0198 "Stream Closure": a stream not cleanly closed is kept for resumption; RFC 7395
   * §3.6: a WebSocket closed before the stream was). A stream error would end the session for
   * good: clients do not resume after one. 1001 tells the client to reconnect now.
   */
  drain: { code: WS_CLOSE.GOING_AWAY, text: "", level: "debug" },
  /** A frame could not be handed to the session tier: the stream is broken. */
  "internal-error": {
    code: WS_CLOSE.INTERNAL_ERROR,
    streamError: "internal-server-error",
    text: "internal error, reconnect",
    level: "error",
  },
} as const satisfies Record<string, CannedClose>;

export type CannedCloseName = keyof typeof CANNED_CLOSES;

/** Closes the client (or the transport below it) initiates; the edge sends nothing. */
export type PeerCloseName =
  /** The client sent a WebSocket close frame. */
  | "client-closed"
  /** The TCP connection ended without a close frame (network loss, dead peer). */
  | "connection-lost"
  /**
   * A message over uWS's maxPayloadLength (maxStanzaBytes + 1 KiB, socket-behavior.ts): uWS
   * drops the TCP connection at once, without a close frame or stream error (the client sees
   * 1006).
   */
  | "message-too-big";

export type CloseReasonName = CannedCloseName | PeerCloseName;

/** The message uWS (v20) gives its close handler when it drops an oversize message. */
const UWS_TOO_BIG_MESSAGE = "Received too big message";

/** Names a close the edge did not initiate, from what uWS reports to the close handler. */
export function peerCloseName(code: number, message: string): PeerCloseName {
  if (code !== WS_CLOSE.ABNORMAL) return "client-closed";
  return message === UWS_TOO_BIG_MESSAGE ? "message-too-big" : "connection-lost";
}

/** RFC 7395 §3.6: the frame that ends the XMPP stream. */
export const CLOSE_FRAME = `<close xmlns="${NS_FRAMING}"/>`;

/** The frames sent before the WebSocket close frame, precomputed once per reason. */
export const CANNED_FRAMES = {} as Record<CannedCloseName, readonly string[]>;
for (const name of Object.keys(CANNED_CLOSES) as CannedCloseName[]) {
  const reason: CannedClose = CANNED_CLOSES[name];
  CANNED_FRAMES[name] = reason.streamError
    ? [streamErrorFrame(reason.streamError, reason.text), CLOSE_FRAME]
    : [];
}

export function streamErrorFrame(condition: StreamErrorCondition, text: string): string {
  // The texts above are constants without markup; nothing here comes from a client.
  return (
    `<stream:error xmlns:stream="${NS_STREAMS}">` +
    `<${condition} xmlns="${NS_STREAM_ERRORS}"/>` +
    `<text xmlns="${NS_STREAM_ERRORS}">${text}</text>` +
    `</stream:error>`
  );
}
