// How frames reach a connection's client, and how its transport ends, by kind of transport:
// a socket on an edge (WebSocket, TCP c2s) or a BOSH session (XEP-0124), whose frames wait in
// the connection's state for a request to answer. LiveContext hands every frame and every close
// to the connection's transport, so a new kind of transport is a module here, not a branch in
// the core's paths.
import { returnUndelivered } from "../../shared/bus/undelivered.js";
import type { EdgePacket } from "../../shared/bus/packets.js";
import type { EdgeFrame } from "../../shared/leases/fenced-writes.js";
import type { ConnState } from "../core/connection.js";
import { isBosh, queueBoshFrame } from "./bosh/bosh-output.js";
import type { LiveContext } from "./live-context.js";

export interface ClientTransport {
  /**
   * Hands one frame (RFC 7395 framing) to the client. `origin`: the delivery it is
   * (bus/origin.ts), taken by the caller, which checked it against the connection's own
   * record where the connection keeps what it is sent (LiveContext.send).
   */
  write(ctx: LiveContext, conn: ConnState, frame: string, origin: string | undefined): void;
  /**
   * The frames a unit held back for `conn` until its state is saved (LiveContext.saveHeld), as
   * the step that saves it writes them (SnapshotSave frames), so that no member dying after the
   * save leaves a stanza the state counts never written; undefined when that step cannot, and
   * they are written after it (write()).
   */
  withSave(
    ctx: LiveContext,
    conn: ConnState,
    frames: readonly HeldFrame[],
  ): EdgeFrame[] | undefined;
  /** The stream is closed (its <close/> written): ends the transport. */
  end(ctx: LiveContext, conn: ConnState): void;
}

/** A frame and its origin (the delivery it is), as write() takes them. */
export type HeldFrame = readonly [frame: string, origin: string | undefined];

/** A socket an edge holds: frames go to that edge's inbox, which writes them out. */
const EDGE_SOCKET: ClientTransport = {
  write(ctx, conn, frame, origin) {
    traceSend(ctx, conn, frame);
    // With its origin, so that the edge drops a repeat (an entry applied again) for the socket.
    const packet: EdgePacket =
      origin === undefined
        ? { k: "data", c: conn.connId, d: frame }
        : { k: "data", c: conn.connId, d: frame, o: origin };
    ctx.track(
      ctx.deps.bus.toEdge(conn.edgeId, packet).then((stored) => {
        // The edge is gone, and the socket with it: the stanza comes back to the connection's
        // shard as undelivered, which ends the connection (in its own turn, on its current
        // state) and reroutes the stanza: stored offline, another resource, or bounced.
        if (!stored) return returnUndelivered(ctx.deps.bus, conn.connId, conn.edgeId, frame);
      }),
    );
  },
  withSave(ctx, conn, frames) {
    const { edgeId, connId } = conn;
    if (!ctx.deps.snapshots.writesEdgeFrames || !ctx.deps.bus.writesEdgeInbox(edgeId)) return;
    return frames.map(([frame, origin]) => {
      traceSend(ctx, conn, frame);
      return { edgeId, connId, frame, origin };
    });
  },
  end(ctx, conn) {
    ctx.toEdgeClose(conn.edgeId, conn.connId);
  },
};

function traceSend(ctx: LiveContext, conn: ConnState, frame: string): void {
  // Checked first: the hot path allocates no log record unless trace is on.
  if (ctx.log.isLevelEnabled("trace")) ctx.log.trace({ connId: conn.connId, out: frame }, "send");
}

/** A BOSH session (bosh-output.ts): frames wait for the earliest held request. */
const BOSH_SESSION: ClientTransport = {
  write(ctx, conn, frame) {
    // The edge sees these frames only inside its answers: repeats were dropped before the
    // queue, by the session's record of origins (LiveContext.send).
    if (isBosh(conn)) queueBoshFrame(ctx, conn, frame);
  },
  withSave() {
    return undefined; // queued in the state it saves (write())
  },
  end() {
    // No socket: its <close/> became a terminating answer (bosh-output.ts).
  },
};

export function transportOf(conn: ConnState): ClientTransport {
  return isBosh(conn) ? BOSH_SESSION : EDGE_SOCKET;
}
