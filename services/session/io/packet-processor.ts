// Applies batches of shard-inbox entries: entries of one connection in order, connections
// side by side (so their Redis commands share pipelines), then waits until every effect is
// stored, saves the touched connections' snapshots, and only then lets the bus acknowledge.
import { parse } from "ltx";
import type { ShardEntry } from "../../shared/bus/packets.js";
import { compareEntryIds } from "../../shared/bus/packets.js";
import { parseJid } from "../../shared/jid.js";
import type { SnapshotStore } from "../../shared/stores/snapshot/snapshot-store.js";
import type { StreamErrorCondition } from "../../shared/xmpp-errors.js";
import { newConnState, type ConnState } from "../core/connection.js";
import { handleFrame } from "../core/dispatch.js";
import type { HandlerChain } from "../core/handler-chain.js";
import { routeMessage } from "../features/message/message.js";
import type { ConnectionTable } from "./connection-table.js";
import type { LiveContext } from "./live-context.js";
import { countEntry, type SessionMetrics } from "../session-metrics.js";

export class PacketProcessor {
  constructor(
    private readonly ctx: LiveContext,
    private readonly chain: HandlerChain,
    private readonly table: ConnectionTable,
    private readonly snapshots: SnapshotStore,
    private readonly metrics: SessionMetrics,
  ) {}

  async handleBatch(batch: ShardEntry[]): Promise<void> {
    this.metrics.batches.inc();
    const byConn = new Map<string, ShardEntry[]>();
    for (const entry of batch) {
      const list = byConn.get(entry.packet.c);
      if (list) list.push(entry);
      else byConn.set(entry.packet.c, [entry]);
    }
    await Promise.all(
      [...byConn].map(([connId, entries]) =>
        this.table.withConn(connId, () => this.applyEntries(connId, entries)),
      ),
    );
    await this.ctx.flush();
  }

  private async applyEntries(connId: string, entries: ShardEntry[]): Promise<void> {
    let touched = false;
    for (const entry of entries) touched = (await this.apply(entry)) || touched;
    const conn = this.table.get(connId);
    if (touched && conn && conn.stage !== "closed")
      this.ctx.track(this.snapshots.save(conn.shard, connId, JSON.stringify(conn)));
  }

  /** Applies one entry; true when the connection's state may have changed. */
  private async apply(entry: ShardEntry): Promise<boolean> {
    const packet = entry.packet;
    countEntry(this.metrics, packet.k);
    if (packet.k === "route") {
      await this.receiveRoute(packet.c, packet.d);
      return false;
    }
    if (packet.k === "open") {
      if (this.table.get(packet.c)) return false; // delivered twice
      const conn = newConnState(packet.c, packet.e, entry.shard, this.ctx.now());
      conn.lastEntryId = entry.id;
      this.table.set(conn);
      return true;
    }
    const conn = this.table.get(packet.c);
    if (!conn) {
      // The session has no state for this socket (e.g. it was closed): tell its edge.
      if (packet.k === "data") this.ctx.track(this.ctx.toEdgeClose(packet.e, packet.c));
      return false;
    }
    if (compareEntryIds(entry.id, conn.lastEntryId) <= 0) return false; // already applied
    conn.lastEntryId = entry.id;
    switch (packet.k) {
      case "data":
        conn.lastActivityMs = this.ctx.now();
        await this.safely(conn, () => handleFrame(this.ctx, this.chain, conn, packet.d));
        return true;
      case "close":
        this.ctx.log.debug({ connId: conn.connId, reason: packet.d }, "socket closed");
        await this.ctx.endConnection(conn);
        return false;
      case "kick":
        this.ctx.close(conn, packet.d as StreamErrorCondition);
        return false;
    }
  }

  /** A handler bug must cost one connection, never the batch (it would be redelivered forever). */
  private async safely(conn: ConnState, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.ctx.log.error({ err, connId: conn.connId, jid: conn.bareJid }, "frame handling failed");
      this.ctx.close(conn, "internal-server-error");
    }
  }

  /** A stanza routed to one of our connections: write it out, or reroute if it is gone. */
  readonly receiveRoute = async (connId: string, xml: string): Promise<void> => {
    const conn = this.table.get(connId);
    if (conn && conn.stage === "bound") {
      this.ctx.send(conn, xml);
      return;
    }
    // The connection ended while the stanza travelled. Messages that may be stored are
    // routed again to the bare JID (RFC 6121 §8.5.3.2.1), after the stale route is removed.
    const stanza = parse(xml);
    if (!stanza.is("message")) return;
    const type = stanza.attrs.type ?? "normal";
    if (type !== "chat" && type !== "normal") return;
    try {
      const to = parseJid(stanza.attrs.to);
      if (to.resource) await this.ctx.stores.routes.unbind(to.bareString(), to.resource, connId);
      await routeMessage(this.ctx, to.bare(), stanza);
    } catch (err) {
      this.ctx.log.warn({ err, connId }, "could not reroute a message for a closed connection");
    }
  };
}
