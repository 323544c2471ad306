// XEP-0198 across the mesh, the shell's half (features/sm/ holds the protocol on one stream).
// - Every stanza sent to a session with stream management is numbered and kept in Redis
//   (SmQueueStore, under the shard's tag) until the client acknowledges it.
// - A lost transport (the edge reports the socket closed, or a stanza came back undelivered)
//   makes a resumable session hibernate for config.resumptionTimeoutMs: no unavailable
//   presence, its binding stays, stanzas for it queue without being written anywhere. The
//   deadline is in the snapshot, so whoever owns the shard next keeps it (client-pinger.ts).
// - When a session ends for good, what the client did not acknowledge is handled as
//   undeliverable (reroute.ts: another resource, offline storage, or an error to the sender),
//   and the connection is marked settled, so that copies still coming back as undelivered
//   from edges are dropped rather than rerouted twice.
// - Resumption through any edge: the resuming connection's session forwards a `resume` packet
//   to the shard the id names (packets.ts); there, in the old connection's turn, the session
//   moves to a new connection id naming the resuming socket's edge and this shard, tells that
//   edge to `rename` the socket, and writes <resumed/> and every unacked stanza after h, in
//   order. The resuming connection's session is told (`resume-result`) to forget it.
import { createHash } from "node:crypto";
import { Element } from "ltx";
import type { ResumeRequest, ShardEntry, ShardPacket } from "../../shared/bus/packets.js";
import { compareEntryIds } from "../../shared/bus/packets.js";
import type { Config } from "../../shared/config.js";
import { makeConnId, parseConnId } from "../../shared/conn-id.js";
import { NS_SM } from "../../shared/ns.js";
import type { ConnState } from "../core/connection.js";
import { ackedTotal, unacked, wireH } from "../features/sm/sm-state.js";
import { failedElement } from "../features/sm/stream-management.js";
import type { ConnectionTable } from "./connection-table.js";
import type { LiveContext } from "./live-context.js";
import { rerouteFromGone } from "./reroute.js";

const STANZA_START = /^<(?:message|presence|iq)[\s/>]/;
const ACK_REQUEST = `<r xmlns="${NS_SM}"/>`;
/**
 * Serials of connection ids made by a resumption start here, above where any edge's serials
 * (random below 2^47, counting up) can reach, so they never name another socket.
 */
const RESUMED_SERIAL_BASE = 2 ** 48;

/** What a unit of the packet processor must do besides saving the connection it ran for. */
export interface SmUnitProgress {
  /** The connection's state moved to this id (a resumption): save that one instead. */
  renamedTo?: string;
  /** Writes that must follow the saved snapshot (the old connection's snapshot goes then). */
  afterSave: (() => Promise<unknown>)[];
  /**
   * Ends the hold on the new connection's turn: at once if the unit failed (it is retried),
   * else once the old connection's units queued behind it are done (packet-processor.ts).
   */
  releaseTurn?: () => void;
}

/**
 * Takes `connId`'s turn and keeps it until the returned release is called: work for it waits
 * (ConnectionTable.withConn), e.g. stanzas for a resumed session while it is being moved.
 */
async function holdTurn(table: ConnectionTable, connId: string): Promise<() => void> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await new Promise<void>((entered) => {
    void table.withConn(connId, () => {
      entered();
      return held;
    });
  });
  return release;
}

/** The server asks for an ack each time this many stanzas are unacked (§4 <r/>). */
export function ackRequestEvery(config: Pick<Config, "smMaxUnackedStanzas">): number {
  return Math.max(1, Math.floor(config.smMaxUnackedStanzas / 4));
}

/**
 * How long a connection stays settled: undelivered copies come back from a live edge at once,
 * from a dead edge's inbox once its heartbeat has lapsed and a session recovered it.
 */
export function settledTtlMs(
  config: Pick<Config, "resumptionTimeoutMs" | "edgeInboxTtlMs">,
): number {
  return config.resumptionTimeoutMs + config.edgeInboxTtlMs;
}

/**
 * LiveContext.send for a connection with stream management (XEP-0198 §4); `origin`: the
 * delivery's, which send took and found new.
 */
export function smSend(
  ctx: LiveContext,
  conn: ConnState,
  d: string,
  origin: string | undefined,
): void {
  const sm = conn.sm;
  if (!sm) return ctx.writeFrame(conn, d, origin);
  const hibernating = sm.hibernateUntilMs !== undefined;
  if (!STANZA_START.test(d)) {
    if (!hibernating) ctx.writeFrame(conn, d, origin);
    return;
  }
  sm.sent++;
  ctx.keepUnacked(conn, sm.id, sm.sent, d);
  if (unacked(sm) > ctx.config.smMaxUnackedStanzas) {
    // Bounded: the session ends and what it holds is handled as undeliverable.
    ctx.log.warn(
      { connId: conn.connId, jid: conn.bareJid, unacked: unacked(sm) },
      "client does not acknowledge stanzas; ending its session",
    );
    ctx.close(conn, "policy-violation", "too many unacknowledged stanzas");
    return;
  }
  if (hibernating) return;
  ctx.writeFrame(conn, d, origin);
  if (unacked(sm) % ackRequestEvery(ctx.config) === 0) requestAck(ctx, conn);
}

/** §4 <r/>: the client must answer with an <a/> at once. Not a stanza: nothing is counted. */
export function requestAck(ctx: LiveContext, conn: ConnState): void {
  ctx.writeToClient(conn, ACK_REQUEST);
}

/**
 * The transport of `conn` is lost (a `close` or `undelivered` packet). A resumable session
 * starts (or keeps) hibernating: true, its state changed. Otherwise false: the caller ends it.
 */
export function hibernate(ctx: LiveContext, table: ConnectionTable, conn: ConnState): boolean {
  if (!startHibernation(ctx, conn, "transport lost")) return false;
  // set() re-arms the pinger, which ends the session at its deadline (client-pinger.ts).
  table.set(conn);
  return true;
}

/**
 * Starts hibernating (or keeps on) if the session is resumable; false if it is not. The caller
 * re-arms the pinger's deadline for it.
 */
export function startHibernation(ctx: LiveContext, conn: ConnState, why: string): boolean {
  const sm = conn.sm;
  if (!sm?.resume || conn.stage !== "bound") return false;
  if (sm.hibernateUntilMs !== undefined) return true;
  sm.hibernateUntilMs = ctx.now() + ctx.config.resumptionTimeoutMs;
  conn.ping = undefined;
  ctx.log.info({ connId: conn.connId, jid: conn.bareJid, why }, "session hibernates");
  return true;
}

/** True while `conn` hibernates (XEP-0198: waiting to be resumed). */
export function isHibernating(conn: ConnState | undefined): boolean {
  return conn?.sm?.hibernateUntilMs !== undefined;
}

/**
 * A stanza came back undelivered for connection `connId`, which the session no longer holds:
 * true when its stream management queue already saw to it (drop the copy).
 */
export function isSettled(ctx: LiveContext, connId: string): Promise<boolean> {
  return ctx.stores.smQueues.isSettled(parseConnId(connId).shard, connId);
}

/**
 * The session of `conn` ends for good (endConnection, after its binding is gone): every
 * stanza the client did not acknowledge is rerouted as undeliverable, then forgotten.
 */
export async function settleUnacked(ctx: LiveContext, conn: ConnState): Promise<void> {
  const sm = conn.sm;
  if (!sm) return;
  const holder = ctx.deps.table.connOfSm(sm.id);
  if (holder !== undefined && holder !== conn.connId) {
    // A stale copy of a session that was resumed elsewhere: the queue is the other one's.
    ctx.log.warn({ connId: conn.connId, holder }, "ending a stale copy of a resumed session");
    return;
  }
  const queues = ctx.stores.smQueues;
  const stored = await queues.range(conn.shard, sm.id, sm.acked + 1, sm.sent);
  // Counted by a unit holding its turn and not stored yet (LiveContext.keepUnacked): the
  // latest numbers.
  const kept = ctx.takeUnacked(conn).map((u) => u.stanza);
  for (const xml of [...stored, ...kept]) await rerouteFromGone(ctx, conn.connId, xml);
  await queues.markSettled(conn.shard, conn.connId, settledTtlMs(ctx.config));
  const { shard } = conn;
  const { id } = sm;
  ctx.afterEffects(() => queues.delete(shard, id));
}

/** The id of the connection a resumption moves a session to (deterministic: retries agree). */
export function resumedConnId(resumingConnId: string, shard: number, entryId: string): string {
  const edgeId = resumingConnId.slice(0, resumingConnId.indexOf("."));
  const digest = createHash("sha256").update(`${entryId} ${resumingConnId}`).digest("hex");
  return makeConnId(edgeId, shard, RESUMED_SERIAL_BASE + parseInt(digest.slice(0, 12), 16));
}

/**
 * The connection whose turn a packet is applied in: a resume, in the session's it names; a
 * stanza for a connection whose session was resumed since (once or more), in the latest
 * connection's (it is delivered to that one in that turn, reroute.ts, in order with the
 * stanzas that name the new id).
 */
export function unitKeyOf(table: ConnectionTable, packet: ShardPacket): string {
  if (packet.k === "route") return table.successorOf(packet.c) ?? packet.c;
  if (packet.k !== "resume") return packet.c;
  try {
    const request = JSON.parse(packet.d) as ResumeRequest;
    return table.connOfSm(request.previd) ?? packet.c;
  } catch {
    return packet.c;
  }
}

type ResumePacket = Extract<ShardPacket, { k: "resume" }>;

/**
 * §5 on the shard of the session: moves it onto the resuming socket, or answers <failed/>.
 * Runs in the old connection's turn; true when the moved state must be saved.
 */
export async function applyResume(
  ctx: LiveContext,
  table: ConnectionTable,
  entry: ShardEntry,
  unit: SmUnitProgress,
): Promise<boolean> {
  const packet = entry.packet as ResumePacket;
  const answer = (d: string) => {
    ctx.observe.resumption(d === "" ? "resumed" : "failed");
    ctx.track(
      ctx.deps.bus.toShard(parseConnId(packet.c).shard, { k: "resume-result", c: packet.c, d }),
    );
  };
  let request: ResumeRequest;
  try {
    request = JSON.parse(packet.d) as ResumeRequest;
  } catch {
    answer(failedElement("item-not-found").toString());
    return false;
  }
  const oldId = table.connOfSm(request.previd);
  const old = oldId === undefined ? undefined : table.get(oldId);
  if (old && compareEntryIds(entry.id, old.lastEntryId) <= 0) return false; // applied before
  const sm = old?.sm;
  if (!old || !sm || !sm.resume || old.stage !== "bound" || old.bareJid !== request.jid) {
    answer(failedElement("item-not-found").toString());
    return false;
  }
  const acked = ackedTotal(sm.acked, request.h);
  if (acked > sm.sent) {
    answer(failedElement("undefined-condition", sm.handled).toString());
    return false;
  }
  old.lastEntryId = entry.id;
  // Until the move is done, stanzas other units deliver to it wait in its inbox
  // (reroute.ts): they reach the moved session, after what is resent.
  old.stage = "resuming";
  const bare = old.bareJid as string;
  const resource = old.resource as string;
  const newId = resumedConnId(packet.c, old.shard, entry.id);
  // Stanzas for either id are applied in the new connection's turn from now on (unitKeyOf),
  // and that turn is ours until this unit is done: they reach the client after what is
  // resent, in the order they came (the old id's are rerouted to the new one, reroute.ts).
  table.moved(old.connId, newId);
  unit.releaseTurn = await holdTurn(table, newId);
  const { routes, smQueues, directed } = ctx.stores;
  const resend = await smQueues.range(old.shard, sm.id, acked + 1, sm.sent);
  if (acked > sm.acked) await smQueues.drop(old.shard, sm.id, sm.acked + 1, acked);
  const presence = (await routes.presences(bare)).find(
    (p) => p.resource === resource && p.connId === old.connId,
  )?.presence;
  await routes.bind(bare, resource, newId, ctx.config.maxResourcesPerUser);
  await routes.update(bare, resource, newId, {
    priority: old.priority,
    interested: old.interested,
    ...(presence === undefined ? {} : { presence }),
  });
  const recipients = await directed.list(old.shard, old.connId);
  for (const jid of recipients) {
    await directed.add(
      old.shard,
      newId,
      jid,
      ctx.config.directedPresenceMaxRecipients,
      ctx.config.directedPresenceMaxBytes,
    );
  }
  await directed.remove(old.shard, old.connId, recipients);

  const moved: ConnState = {
    ...old,
    connId: newId,
    edgeId: packet.e,
    stage: "bound",
    lastActivityMs: ctx.now(),
    ping: undefined,
    sm: { ...sm, acked, hibernateUntilMs: undefined },
    // Another socket, maybe of another process: its in-process ids are not comparable.
    lastInProcessId: undefined,
  };
  table.delete(old.connId);
  table.set(moved);
  unit.renamedTo = newId;
  // In this order on the resuming socket's edge: the rename, then what the client reads.
  ctx.track(ctx.deps.bus.toEdge(packet.e, { k: "rename", c: packet.c, d: newId }));
  ctx.writeToClient(
    moved,
    new Element("resumed", { xmlns: NS_SM, previd: sm.id, h: wireH(sm.handled) }).toString(),
  );
  for (const stanza of resend) ctx.writeToClient(moved, stanza);
  // The old socket, if it still exists, ends quietly: the session lives on.
  ctx.toEdgeClose(old.edgeId, old.connId);
  ctx.track(smQueues.markSettled(old.shard, old.connId, settledTtlMs(ctx.config)));
  answer("");
  unit.afterSave.push(() => ctx.deps.snapshots.remove(old.shard, old.connId));
  ctx.log.info(
    { connId: newId, previous: old.connId, jid: bare, resent: resend.length },
    "session resumed",
  );
  return true;
}

/** The answer to our connection's `resume` (the packet's `d`, see packets.ts). */
export async function applyResumeResult(
  ctx: LiveContext,
  table: ConnectionTable,
  entry: ShardEntry,
): Promise<boolean> {
  const packet = entry.packet as Extract<ShardPacket, { k: "resume-result" }>;
  const conn = table.get(packet.c);
  if (!conn || conn.stage !== "resuming") return false;
  if (compareEntryIds(entry.id, conn.lastEntryId) <= 0) return false;
  conn.lastEntryId = entry.id;
  if (packet.d === "") {
    // The socket belongs to the resumed session now: forget it here, without closing it.
    await ctx.endConnection(conn);
    return false;
  }
  // §5: after <failed/>, the client may bind a resource on this stream. No rename of it comes
  // from the other member: a node's edge may take its frames in process again.
  ctx.deps.ownEdge?.resumeRefused(conn.connId);
  conn.stage = "restarted";
  ctx.send(conn, packet.d);
  return true;
}
