// Writes edge-inbox packets to sockets (STYLE §2.11). One cork per socket per batch, in order.
// uWS buffers what the kernel does not take, up to maxBackpressureBytes; a client whose buffer
// passes that bound, or whose frame uWS drops, is ended with `slow-consumer`. The uWS buffer is
// the connection's bounded output queue: the edge inbox is shared by all sockets, so holding
// one socket's entries elsewhere would only move that buffer. A stanza is never dropped
// silently: one the edge cannot hand to its socket (the socket is gone, is closing, or uWS
// refused the frame) goes back to its session as `undelivered`, which stores it offline,
// routes it to another resource or bounces it to its sender.
import { entryAgeSeconds } from "../../shared/bus/entry-age.js";
import { OriginMemory } from "../../shared/bus/origin.js";
import type { EdgePacket } from "../../shared/bus/packets.js";
import { parseConnId } from "../../shared/conn-id.js";
import type { Logger } from "../../shared/log.js";
import type { CannedCloseName } from "../close-reasons.js";
import type { EdgeMetrics } from "../edge-metrics.js";
import type { Connection } from "./connection.js";
import type { ConnectionRegistry } from "./connection-registry.js";

/** uWS WebSocket.send() results. */
export const SEND_STATUS = { BACKPRESSURE: 0, SUCCESS: 1, DROPPED: 2 } as const;

export interface OutboundDeps {
  registry: ConnectionRegistry;
  maxBackpressureBytes: number;
  metrics: EdgeMetrics;
  log: Logger;
  end(conn: Connection, reason: CannedCloseName): void;
  /**
   * Gives a stanza that did not reach connection `connId`'s socket back to its session;
   * resolves once that is stored (the inbox position must not pass it before).
   */
  returnUndelivered(connId: string, stanza: string): Promise<void>;
}

/** Returns every data packet of `packets` as undelivered; counts them. */
function returnAll(packets: readonly EdgePacket[], deps: OutboundDeps, returns: Promise<void>[]) {
  for (const packet of packets) {
    if (packet.k !== "data") continue;
    deps.metrics.orphanPackets.inc();
    returns.push(deps.returnUndelivered(packet.c, packet.d));
  }
}

/**
 * Writes one batch read from the edge inbox (`entryIds[i]` is `batch[i]`'s inbox entry id, for
 * its delivery delay); resolves once what it gave back is stored. Socket writes never throw out
 * of it (a throw would stop the reader).
 */
export async function deliverEdgeBatch(
  batch: readonly EdgePacket[],
  entryIds: readonly string[],
  deps: OutboundDeps,
): Promise<void> {
  const returns: Promise<void>[] = [];
  const byConn = new Map<string, EdgePacket[]>();
  const idOf = new Map<EdgePacket, string>();
  // A socket renamed in this batch: its packets under the new id follow the rename, in order.
  const renamedFrom = new Map<string, string>();
  batch.forEach((packet, i) => {
    const key = renamedFrom.get(packet.c) ?? packet.c;
    let packets = byConn.get(key);
    if (!packets) byConn.set(key, (packets = []));
    packets.push(packet);
    if (entryIds[i] !== undefined) idOf.set(packet, entryIds[i]);
    if (packet.k === "rename") renamedFrom.set(packet.d, key);
  });
  for (const [connId, packets] of byConn) {
    const conn = deps.registry.get(connId);
    if (!conn || conn.closeReason !== undefined) {
      returnAll(packets, deps, returns);
      continue;
    }
    try {
      conn.ws.cork(() => writePackets(conn, packets, idOf, deps, returns));
    } catch (err) {
      deps.log.error({ err, connId, shard: conn.shard }, "writing to a socket failed");
    }
  }
  await Promise.all(returns);
}

function writePackets(
  conn: Connection,
  packets: EdgePacket[],
  idOf: ReadonlyMap<EdgePacket, string>,
  deps: OutboundDeps,
  returns: Promise<void>[],
): void {
  const nowMs = Date.now();
  for (let i = 0; i < packets.length; i++) {
    const packet = packets[i];
    if (conn.closeReason !== undefined) {
      // Ended by an earlier packet of this batch: the rest has no socket to go to.
      returnAll(packets.slice(i), deps, returns);
      return;
    }
    if (!writePacket(conn, packet, idOf.get(packet), nowMs, deps)) {
      returnAll([packet], deps, returns);
      deps.end(conn, "slow-consumer");
    }
  }
}

/**
 * Writes a packet from this process's own session to its connection's socket at once, without
 * the inbox (in-process-edge-bus.ts): false when the socket is not there to take it (the
 * connection is unknown or closing) or uWS dropped the frame, which ends the connection; the
 * caller then sends the packet through the inbox, where the reader gives it back as
 * undelivered, as it would have found it. (A dropped frame thus comes back after the
 * connection's close, as any frame that reaches a closed socket does.)
 */
export function writeInProcess(packet: EdgePacket, deps: OutboundDeps): boolean {
  const conn = deps.registry.get(packet.c);
  if (!conn || conn.closeReason !== undefined) return false;
  let written = false;
  try {
    conn.ws.cork(() => (written = writePacket(conn, packet, undefined, Date.now(), deps)));
  } catch (err) {
    deps.log.error({ err, connId: conn.id, shard: conn.shard }, "writing to a socket failed");
    return true; // as the reader does: the socket's trouble is its close's to report
  }
  if (!written) {
    deps.end(conn, "slow-consumer");
    return false;
  }
  // The same connection object after a rename: the mark follows it to its new id.
  conn.writtenInProcess = true;
  return true;
}

/**
 * One packet to its connection's open socket; false when uWS dropped a data frame (the caller
 * gives it back and ends the connection). `entryId`: its inbox entry, for the delivery delay.
 */
function writePacket(
  conn: Connection,
  packet: EdgePacket,
  entryId: string | undefined,
  nowMs: number,
  deps: OutboundDeps,
): boolean {
  switch (packet.k) {
    case "data": {
      if (packet.o !== undefined && !(conn.origins ??= new OriginMemory()).accept(packet.o)) {
        deps.metrics.duplicatesDropped.inc();
        return true; // written before: its entry was applied twice (origin.ts)
      }
      const status = conn.ws.send(packet.d, false);
      if (status === SEND_STATUS.DROPPED) return false;
      // Buffered counts as written: uWS delivers it before anything sent later.
      conn.wroteSessionFrame = true;
      deps.metrics.framesOut.inc();
      deps.metrics.bytesOut.inc(Buffer.byteLength(packet.d));
      if (entryId) deps.metrics.deliveryDelay.observe(entryAgeSeconds(entryId, nowMs));
      if (conn.ws.getBufferedAmount() > deps.maxBackpressureBytes) deps.end(conn, "slow-consumer");
      return true;
    }
    case "close":
      deps.end(conn, "session-closed");
      return true;
    case "rename":
      deps.registry.rename(conn, packet.d, parseConnId(packet.d).shard);
      return true;
    default:
      deps.log.warn({ connId: conn.id, kind: (packet as { k: string }).k }, "unknown edge packet");
      return true;
  }
}
