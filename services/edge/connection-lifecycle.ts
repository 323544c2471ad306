// How a client connection starts and ends on the edge, whatever its transport (ws/, tcp/): it
// gets a connection id and a shard, counts in the registry and the admission caps, and its
// shard hears `open` when its stream may begin and exactly one `close` when it ends.
import type { OpenPacket } from "../shared/bus/packets.js";
import { makeConnId } from "../shared/conn-id.js";
import type { Logger } from "../shared/log.js";
import type { ClientSocket } from "./client-socket.js";
import { CANNED_CLOSES, type CloseReasonName } from "./close-reasons.js";
import type { EdgeMetrics } from "./edge-metrics.js";
import { TokenBucket } from "./token-bucket.js";
import type { Admission } from "./ws/admission.js";
import type { Connection } from "./ws/connection.js";
import type { ConnectionRegistry } from "./ws/connection-registry.js";
import type { ShardPublisher } from "./ws/publisher.js";

export interface LifecycleDeps {
  /** Part of every connection id. */
  edgeId: string;
  /** This incarnation's address (edge-registry.ts): the `e` of every packet, names its inbox. */
  address: string;
  limits: { inboundBytesPerSecond: number; inboundBurstBytes: number };
  /**
   * The shard of a new connection: uniformly among the shards the edge assigns to (all unless
   * --shards narrows them) whose inboxes are not far behind (shard-lag.ts).
   */
  assignShard(): number;
  registry: ConnectionRegistry;
  admission: Admission;
  publisher: ShardPublisher;
  metrics: EdgeMetrics;
  log: Logger;
  /** Monotonic clock, ms. */
  now(): number;
}

/**
 * Registers a new connection of `socket` from `clientAddress` (its admission key). Its shard
 * is not told yet: announceConnection() does that once the stream may begin.
 */
export function openConnection(
  socket: ClientSocket,
  clientAddress: string,
  deps: LifecycleDeps,
): Connection {
  const { edgeId, limits, registry } = deps;
  const shard = deps.assignShard();
  const now = deps.now();
  const conn: Connection = {
    id: makeConnId(edgeId, shard, registry.nextSerial()),
    shard,
    address: clientAddress,
    ws: socket,
    openedAtMs: now,
    lastInboundAtMs: now,
    dataFrames: 0,
    bucket: new TokenBucket(limits.inboundBurstBytes, limits.inboundBytesPerSecond, now),
    wroteSessionFrame: false,
    closeReason: undefined,
    closed: false,
    heldCostBytes: 0,
    broken: false,
    // Declared here, though made later, so that they are fields of the object itself rather
    // than of an extra property array added to every connection that gets them.
    held: undefined,
    origins: undefined,
    writtenInProcess: undefined,
  };
  registry.add(conn);
  deps.metrics.connectionsOpened.inc();
  deps.admission.opened(conn);
  deps.log.debug({ connId: conn.id, shard, address: conn.address }, "connection opened");
  return conn;
}

/**
 * Tells the connection's shard that it opened (the `open` packet); `tls` when the edge
 * terminated TLS for it, with that TLS connection's channel-binding data.
 */
export function announceConnection(
  conn: Connection,
  deps: LifecycleDeps,
  tls?: { exporter?: string; endPoint?: string; unique?: string },
): void {
  const open: OpenPacket = { k: "open", c: conn.id, e: deps.address };
  if (tls) {
    open.s = "1";
    if (tls.exporter) open.x = tls.exporter;
    if (tls.endPoint) open.t = tls.endPoint;
    if (tls.unique) open.u = tls.unique;
  }
  deps.publisher.publish(conn, open);
}

/**
 * The connection's socket is gone: it leaves the registry and the caps, and its shard hears
 * `close` (once, and only if it was announced). `peerReason` names the close when the edge did
 * not start it; `code` is the transport's, for the log.
 */
export function closeConnection(
  conn: Connection,
  peerReason: CloseReasonName,
  deps: LifecycleDeps,
  announced = true,
  code?: number,
): void {
  if (conn.closed) return;
  conn.closed = true;
  deps.registry.delete(conn.id);
  deps.admission.closed(conn);
  const reason = conn.closeReason ?? peerReason;
  const level = conn.closeReason ? CANNED_CLOSES[conn.closeReason].level : "debug";
  deps.metrics.closes.inc({ reason });
  deps.log[level]({ connId: conn.id, shard: conn.shard, reason, code }, "connection closed");
  if (announced)
    deps.publisher.publish(conn, { k: "close", c: conn.id, e: deps.address, d: reason });
}
