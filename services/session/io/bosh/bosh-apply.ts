// XEP-0124 / XEP-0206 on the session tier: applies one `bosh` shard packet (one HTTP request
// an edge holds). Session creation (§7), rid order and the window with retries answered from
// what was kept (§14.3), hold and wait (§10-§11), terminate (§13) and restart (XEP-0206 §5).
// Each payload child is applied exactly like a WebSocket frame: the core does not know BOSH.
import { randomBytes } from "node:crypto";
import { parseSid } from "../../../shared/bosh-sid.js";
import type { ShardEntry, ShardPacket } from "../../../shared/bus/packets.js";
import { compareEntryIds } from "../../../shared/bus/packets.js";
import { NS_FRAMING } from "../../../shared/ns.js";
import { isStoreError } from "../../../shared/redis/errors.js";
import { newConnState, type ConnState } from "../../core/connection.js";
import { handleFrame } from "../../core/dispatch.js";
import type { HandlerChain } from "../../core/handler-chain.js";
import type { ConnectionTable } from "../connection-table.js";
import type { LiveContext } from "../live-context.js";
import {
  BODY_WRAPPER_BYTES,
  BoshError,
  negotiatedVersion,
  parseBoshBody,
  startTagAttr,
  type BoshRequest,
} from "./bosh-body.js";
import { answerHeld, isBosh, refuse, respond, type BoshConn } from "./bosh-output.js";
import type { BoshState } from "./bosh-state.js";
import { classifyRid, forgetAcknowledged } from "./bosh-window.js";

type BoshPacket = Extract<ShardPacket, { k: "bosh" }>;

/** Frames the core reads as the client's stream header and end (RFC 7395 §3.3.2, §3.6). */
function openFrame(to: string | undefined): string {
  return `<open xmlns="${NS_FRAMING}" version="1.0"${to === undefined ? "" : ` to="${to.replace(/[<>&"']/g, "")}"`}/>`;
}
const CLOSE_FRAME = `<close xmlns="${NS_FRAMING}"/>`;

export interface BoshDeps {
  table: ConnectionTable;
  chain: HandlerChain;
  /** Tells the wait/inactivity timer to look at the connection (bosh-timers.ts). */
  watch(conn: ConnState): void;
}

/** Applies `entry` (a `bosh` packet); true when the connection's state changed. */
export async function applyBosh(
  ctx: LiveContext,
  entry: ShardEntry,
  deps: BoshDeps,
): Promise<boolean> {
  const packet = entry.packet as BoshPacket;
  let request: BoshRequest;
  try {
    request = parseBoshBody(packet.d, ctx.config.maxStanzaBytes + BODY_WRAPPER_BYTES);
  } catch (err) {
    if (!(err instanceof BoshError)) throw err;
    const rid = startTagAttr(packet.d, "rid");
    if (rid !== undefined) refuse(ctx, packet.e, packet.c, rid, err.condition);
    // Bad input ends its own session only: the one whose secret it knows.
    const conn = deps.table.get(packet.c);
    const secret = parseSid(startTagAttr(packet.d, "sid") ?? "")?.secret;
    if (isBosh(conn) && conn.stage !== "closed" && secret === conn.bosh.secret)
      await ctx.endConnection(conn);
    return false;
  }
  if (request.sid === undefined) return create(ctx, entry, packet, request, deps);
  const conn = deps.table.get(packet.c);
  const sid = parseSid(request.sid);
  if (!isBosh(conn) || conn.stage === "closed" || sid?.secret !== conn.bosh.secret) {
    refuse(ctx, packet.e, packet.c, request.rid, "item-not-found");
    return false;
  }
  if (compareEntryIds(entry.id, conn.lastEntryId) <= 0) return false; // applied before
  conn.lastEntryId = entry.id;
  const state = conn.bosh;
  switch (classifyRid(state, request.rid)) {
    case "next":
      await applyInOrder(ctx, conn, request, packet.e, deps);
      break;
    case "early":
      state.early.push({ rid: request.rid, body: packet.d, edge: packet.e });
      break;
    case "duplicate":
      for (const early of state.early) if (early.rid === request.rid) early.edge = packet.e;
      break;
    case "held":
      // Its edge died, or the client gave up on it: the answer goes to where it asks now.
      for (const held of state.held) if (held.rid === request.rid) held.edge = packet.e;
      changeEdge(deps.table, conn, packet.e);
      break;
    case "replay": {
      const sent = state.sent.find((s) => s.rid === request.rid)!;
      respond(ctx, conn, request.rid, packet.e, sent.body);
      break;
    }
    case "out-of-window":
      ctx.log.info({ connId: conn.connId, rid: request.rid }, "BOSH rid out of window");
      refuse(ctx, packet.e, conn.connId, request.rid, "item-not-found");
      await ctx.endConnection(conn);
      return false;
  }
  deps.watch(conn);
  return true;
}

/** §7.1: a request with no sid creates the connection (as `open` does), with our limits. */
async function create(
  ctx: LiveContext,
  entry: ShardEntry,
  packet: BoshPacket,
  request: BoshRequest,
  deps: BoshDeps,
): Promise<boolean> {
  const { table } = deps;
  if (table.wasClosed(packet.c)) return false; // delivered again after its end
  const existing = table.get(packet.c);
  if (existing && compareEntryIds(entry.id, existing.lastEntryId) <= 0) return false;
  if (existing) await ctx.endConnection(existing); // an id reused: never inherit its login
  const { config } = ctx;
  const hold = Math.min(Math.max(request.hold ?? 1, 1), config.boshMaxHold);
  const waitMs = Math.min(Math.max((request.wait ?? 60) * 1000, 1000), config.boshMaxWaitMs);
  const conn = newConnState(packet.c, packet.e, entry.shard, ctx.now()) as BoshConn;
  conn.bosh = {
    // From the entry (the edge drew it); an edge of an earlier version sends none.
    secret: packet.s ?? randomBytes(18).toString("base64url"),
    waitMs,
    hold,
    requests: Math.max(config.boshRequests, hold + 1),
    ver: negotiatedVersion(request.ver),
    rid: request.rid,
    held: [{ rid: request.rid, edge: packet.e, atMs: ctx.now() }],
    sent: [],
    early: [],
    out: [],
    outBytes: 0,
    creating: true,
    lastRequestMs: ctx.now(),
  } satisfies BoshState;
  conn.lastEntryId = entry.id;
  table.set(conn);
  // XEP-0206 §3: the creation request opens the stream; its answer carries the features.
  await frame(ctx, conn, openFrame(request.to), deps);
  for (const payload of request.payloads) await frame(ctx, conn, payload, deps);
  answerHeld(ctx, conn, ctx.now());
  deps.watch(conn);
  return true;
}

/** Applies the next rid, then any kept early ones it lets follow (§14.3). */
async function applyInOrder(
  ctx: LiveContext,
  conn: BoshConn,
  request: BoshRequest,
  edge: string,
  deps: BoshDeps,
): Promise<void> {
  const state = conn.bosh;
  for (let next: BoshRequest | undefined = request; next;) {
    await applyRequest(ctx, conn, next, edge, deps);
    const rid: number = state.rid + 1;
    const early = state.early.find((e) => e.rid === rid);
    next = undefined;
    if (early && conn.stage !== "closed") {
      state.early = state.early.filter((e) => e !== early);
      edge = early.edge;
      next = parseBoshBody(early.body, ctx.config.maxStanzaBytes + BODY_WRAPPER_BYTES);
    }
  }
}

async function applyRequest(
  ctx: LiveContext,
  conn: BoshConn,
  request: BoshRequest,
  edge: string,
  deps: BoshDeps,
): Promise<void> {
  const state = conn.bosh;
  const now = ctx.now();
  state.rid = request.rid;
  state.lastRequestMs = now;
  conn.lastActivityMs = now;
  forgetAcknowledged(state, request.rid, request.ack);
  state.held.push({ rid: request.rid, edge, atMs: now });
  changeEdge(deps.table, conn, edge);
  if (request.restart) await frame(ctx, conn, openFrame(request.to), deps);
  for (const payload of request.payloads) await frame(ctx, conn, payload, deps);
  // §13: the client ends the session; the core answers <close/>, which terminates.
  if (request.terminate) await frame(ctx, conn, CLOSE_FRAME, deps);
  answerHeld(ctx, conn, now);
}

async function frame(ctx: LiveContext, conn: ConnState, text: string, deps: BoshDeps) {
  if (conn.stage === "closed") return;
  try {
    await handleFrame(ctx, deps.chain, conn, text);
  } catch (err) {
    if (isStoreError(err)) throw err;
    ctx.log.error({ err, connId: conn.connId, jid: conn.bareJid }, "frame handling failed");
    ctx.close(conn, "internal-server-error");
  }
}

/** The session answers at the edge that holds the latest request (BOSH is not sticky). */
function changeEdge(table: ConnectionTable, conn: ConnState, edge: string): void {
  if (conn.edgeId === edge) return;
  table.changeEdge(conn, edge);
}
