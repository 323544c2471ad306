// Ends a socket with a canned close (close-reasons.ts): the canned frames, then a WebSocket
// close frame with the reason's code and name. uWS runs the close handler from inside end(),
// and that handler publishes the `close` packet, so this is the only thing a caller does.
import { CANNED_CLOSES, CANNED_FRAMES, type CannedCloseName } from "../close-reasons.js";
import { streamHeaderFrame } from "../stream-header.js";
import type { Connection } from "./connection.js";

/** `domain` (config.domain) names the server in a stream header the edge has to send first. */
export function endConnection(conn: Connection, reason: CannedCloseName, domain: string): void {
  if (conn.closed || conn.closeReason !== undefined) return;
  conn.closeReason = reason;
  const { ws } = conn;
  const frames = CANNED_FRAMES[reason];
  ws.cork(() => {
    // Best effort: a client over its backpressure bound does not get these (uWS drops them).
    // RFC 6120 §4.9.1.1: a stream error needs a stream header before it; until a session frame
    // has been written, the session's own header has not reached this client.
    if (frames.length > 0 && !conn.wroteSessionFrame) ws.send(streamHeaderFrame(domain), false);
    for (const frame of frames) ws.send(frame, false);
    ws.end(CANNED_CLOSES[reason].code, reason);
  });
}
