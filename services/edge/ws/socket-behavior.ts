// The uWS behavior of the /xmpp-websocket route: limits from config, and the handlers that give
// each socket a connection id and a shard, and tell the shard when it opens, speaks and ends.
// Every close, whoever starts it, publishes exactly one `close` packet from the close handler.
import uWS, { type WebSocketBehavior } from "uWebSockets.js";
import { peerCloseName, type CannedCloseName } from "../close-reasons.js";
import {
  announceConnection,
  closeConnection,
  openConnection,
  type LifecycleDeps,
} from "../connection-lifecycle.js";
import type { Connection, EdgeSocket, SocketData } from "./connection.js";
import { onClientMessage, type InboundDeps } from "./inbound.js";
import { handleUpgrade, type UpgradeDeps } from "./upgrade.js";

export interface SocketLimits {
  maxStanzaBytes: number;
  inboundFrameCostBytes: number;
  inboundBytesPerSecond: number;
  inboundBurstBytes: number;
  idleTimeoutMs: number;
  maxBackpressureBytes: number;
}

export interface SocketBehaviorDeps extends LifecycleDeps {
  limits: SocketLimits;
  upgrade: UpgradeDeps;
  end(conn: Connection, reason: CannedCloseName): void;
}

/** uWS accepts an idle timeout of 0 (off) or 8..960 s. */
const UWS_IDLE_MIN_SECONDS = 8;
const UWS_IDLE_MAX_SECONDS = 960;
const UWS_IDLE_MARGIN_SECONDS = 8;
/** uWS reads this option as an integer flag. */
const UWS_TRUE = 1;

/**
 * How far above maxStanzaBytes a message may go and still reach the message handler, which
 * answers it with a `policy-violation` stream error. uWS buffers a message (every fragment of
 * it) until it is complete, up to maxPayloadLength, for each socket: so this margin is small,
 * enough for a stanza a client sized by the advertised limit (XEP-0478) without counting its
 * framing, and not a second stanza's worth of memory per socket.
 */
export const OVERSIZE_ANSWER_MARGIN_BYTES = 1024;

/** uWS's maxPayloadLength: the most bytes it buffers for one message of one socket. */
export function maxPayloadLengthBytes(maxStanzaBytes: number): number {
  return maxStanzaBytes + OVERSIZE_ANSWER_MARGIN_BYTES;
}

/**
 * uWS's own idle timeout, set above idleTimeoutMs so the edge's sweep always fires first for a
 * silent client. It stays on (rather than 0) because uWS also uses it to bound how long an
 * ended socket may wait for its close handshake, and, with automatic pings, to drop dead peers
 * (reported as `connection-lost`) when idleTimeoutMs is longer than uWS allows.
 */
export function uwsIdleTimeoutSeconds(idleTimeoutMs: number): number {
  const seconds = Math.ceil(idleTimeoutMs / 1000) + UWS_IDLE_MARGIN_SECONDS;
  return Math.min(UWS_IDLE_MAX_SECONDS, Math.max(UWS_IDLE_MIN_SECONDS, seconds));
}

/** Room for the canned stream error, </close> and the stream header before them. */
export const SLOW_CONSUMER_CLOSE_HEADROOM_BYTES = 4096;

export function uwsMaxBackpressureBytes(limits: SocketLimits): number {
  return limits.maxBackpressureBytes + limits.maxStanzaBytes + SLOW_CONSUMER_CLOSE_HEADROOM_BYTES;
}

export function socketBehavior(deps: SocketBehaviorDeps): WebSocketBehavior<SocketData> {
  const { limits } = deps;
  const inbound: InboundDeps = {
    address: deps.address,
    maxStanzaBytes: limits.maxStanzaBytes,
    inboundFrameCostBytes: limits.inboundFrameCostBytes,
    publisher: deps.publisher,
    metrics: deps.metrics,
    end: deps.end,
  };
  return {
    compression: uWS.DISABLED,
    // Messages up to maxStanzaBytes + OVERSIZE_ANSWER_MARGIN_BYTES reach the message handler,
    // which ends oversize ones with a `policy-violation` stream error. uWS itself drops the
    // connection on anything larger, as soon as a frame header announces it or the buffered
    // fragments pass it, without a stream error or close frame (the client sees 1006, not
    // 1009); the session gets `message-too-big`.
    maxPayloadLength: maxPayloadLengthBytes(limits.maxStanzaBytes),
    // outbound.ts ends a socket as soon as its buffer passes maxBackpressureBytes. uWS's own
    // bound sits above it by one largest stanza and the canned closing frames, so the stanza
    // that crossed the line and the stream error with its </close> are still buffered behind
    // what the client has not read: a client that reads again gets all of it, then the close.
    // Past uWS's bound it drops the socket at once (the net for a bug, never the plan).
    maxBackpressure: uwsMaxBackpressureBytes(limits),
    closeOnBackpressureLimit: UWS_TRUE,
    idleTimeout: uwsIdleTimeoutSeconds(limits.idleTimeoutMs),
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => handleUpgrade(res, req, context, deps.upgrade),
    open: (ws) => onOpen(ws, deps),
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().conn;
      if (conn) onClientMessage(conn, message, isBinary, deps.now(), inbound);
    },
    // WebSocket pings are not activity: uWS answers them itself at no cost to the client, so a
    // socket kept open by pings alone would hold its slot (and its buffers) forever. Only
    // messages (inbound.ts) move lastInboundAtMs.
    close: (ws, code, message) => onClose(ws, code, message, deps),
  };
}

function onOpen(ws: EdgeSocket, deps: SocketBehaviorDeps): void {
  const conn = openConnection(ws, ws.getUserData().address, deps);
  ws.getUserData().conn = conn;
  announceConnection(conn, deps);
}

function onClose(
  ws: EdgeSocket,
  code: number,
  message: ArrayBuffer,
  deps: SocketBehaviorDeps,
): void {
  const conn = ws.getUserData().conn;
  if (!conn) return;
  const peer = peerCloseName(code, Buffer.from(message).toString("utf8"));
  closeConnection(conn, peer, deps, true, code);
}
