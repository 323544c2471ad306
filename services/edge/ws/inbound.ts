// One client message, checked against the transport limits and handed to its shard. RFC 7395
// §3.3.3: each text message is one complete XML element, so one message is one `data` packet.
// Checks, in order: text frame, maxStanzaBytes, the connection's token bucket (charged the
// frame's cost, frame-cost.ts); then whitespace keepalives are dropped (keepalive.ts).
import type { CannedCloseName } from "../close-reasons.js";
import type { EdgeMetrics } from "../edge-metrics.js";
import { inboundFrameCostBytes } from "../frame-cost.js";
import type { Connection } from "./connection.js";
import { isWhitespaceKeepalive } from "./keepalive.js";
import type { ShardPublisher } from "./publisher.js";

export interface InboundDeps {
  /** The edge's address, the `e` of its packets. */
  address: string;
  maxStanzaBytes: number;
  /** The least a frame costs, in token bytes (config.inboundFrameCostBytes). */
  inboundFrameCostBytes: number;
  publisher: ShardPublisher;
  metrics: EdgeMetrics;
  end(conn: Connection, reason: CannedCloseName): void;
}

/** `message` is only valid during the call (uWS neuters it on return); it is copied here. */
export function onClientMessage(
  conn: Connection,
  message: ArrayBuffer,
  isBinary: boolean,
  nowMs: number,
  deps: InboundDeps,
): void {
  if (conn.closeReason !== undefined) return;
  const bytes = message.byteLength;
  // Any frame, a keepalive too, is activity for the idle timeout.
  conn.lastInboundAtMs = nowMs;
  deps.metrics.framesIn.inc();
  deps.metrics.bytesIn.inc(bytes);
  if (isBinary) return deps.end(conn, "binary-frame");
  if (bytes > deps.maxStanzaBytes) return deps.end(conn, "policy-violation");
  const costBytes = inboundFrameCostBytes(bytes, deps.inboundFrameCostBytes);
  if (!conn.bucket.take(costBytes, nowMs)) return deps.end(conn, "rate-limited");
  if (isWhitespaceKeepalive(message)) return;
  conn.dataFrames++;
  const d = Buffer.from(message).toString("utf8");
  deps.publisher.publish(conn, { k: "data", c: conn.id, e: deps.address, d }, costBytes);
}
