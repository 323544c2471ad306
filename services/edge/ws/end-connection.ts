// Ends a socket with a canned close (close-reasons.ts): the canned frames, then a WebSocket
// close frame with the reason's code and name. uWS runs the close handler from inside end(),
// and that handler publishes the `close` packet, so this is the only thing a caller does.
import { CANNED_CLOSES, CANNED_FRAMES, type CannedCloseName } from "../close-reasons.js";
import type { Connection } from "./connection.js";

export function endConnection(conn: Connection, reason: CannedCloseName): void {
  if (conn.closed || conn.closeReason !== undefined) return;
  conn.closeReason = reason;
  const { ws } = conn;
  ws.cork(() => {
    // Best effort: a client over its backpressure bound does not get these (uWS drops them).
    for (const frame of CANNED_FRAMES[reason]) ws.send(frame, false);
    ws.end(CANNED_CLOSES[reason].code, reason);
  });
}
