// One timer for every socket's timeouts instead of one timer per socket: a connection that has
// sent no data frame (whitespace keepalives do not count) within handshakeTimeoutMs gets
// `handshake-timeout`; one that sends no message for idleTimeoutMs gets `idle` (a whitespace
// keepalive counts, a WebSocket ping does not: socket-behavior.ts). A timeout fires up to one
// sweep interval late.
import type { CannedCloseName } from "../close-reasons.js";
import type { Connection } from "./connection.js";
import type { ConnectionRegistry } from "./connection-registry.js";

export interface SweepLimits {
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
}

const MIN_SWEEP_MS = 25;
const MAX_SWEEP_MS = 1000;

/** A quarter of the shorter timeout, kept within [25 ms, 1 s]. */
export function sweepIntervalMs(limits: SweepLimits): number {
  const quarter = Math.min(limits.idleTimeoutMs, limits.handshakeTimeoutMs) / 4;
  return Math.round(Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, quarter)));
}

export function sweep(
  registry: ConnectionRegistry,
  limits: SweepLimits,
  nowMs: number,
  end: (conn: Connection, reason: CannedCloseName) => void,
): void {
  for (const conn of registry.values()) {
    if (conn.closeReason !== undefined) continue;
    if (conn.dataFrames === 0) {
      if (nowMs - conn.openedAtMs >= limits.handshakeTimeoutMs) end(conn, "handshake-timeout");
    } else if (nowMs - conn.lastInboundAtMs >= limits.idleTimeoutMs) end(conn, "idle");
  }
}

/** Sweeps every interval until the returned function is called. */
export function startSweeper(
  registry: ConnectionRegistry,
  limits: SweepLimits,
  now: () => number,
  end: (conn: Connection, reason: CannedCloseName) => void,
): () => void {
  const timer = setInterval(() => sweep(registry, limits, now(), end), sweepIntervalMs(limits));
  timer.unref();
  return () => clearInterval(timer);
}
