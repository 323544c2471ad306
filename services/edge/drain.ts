// The gradual part of an edge's stop (issue 7; DESIGN.md failure model, "scale down / rolling
// update"): the caller has already failed /readyz and refuses upgrades; this waits drainDelayMs
// so load balancers stop sending clients here, then closes the open sockets in slices spread
// evenly over drainWindowMs, so the clients that reconnect (and resume, XEP-0198) do not all hit
// the other edges in the same moment. One timer per slice, never one per socket.
import { delay } from "../shared/async/delay.js";
import type { Logger } from "../shared/log.js";

/** Time between two slices: short enough to look even to the other edges, few timers. */
export const DRAIN_SLICE_INTERVAL_MS = 100;
/** Bounds the loop whatever the window (the ceiling of drainWindowMs gives 6000 otherwise). */
export const MAX_DRAIN_SLICES = 1000;

/** The number of slices a window is cut into: one per DRAIN_SLICE_INTERVAL_MS, at least one. */
export function drainSliceCount(windowMs: number): number {
  return Math.min(MAX_DRAIN_SLICES, Math.max(1, Math.floor(windowMs / DRAIN_SLICE_INTERVAL_MS)));
}

export interface DrainDeps<T> {
  /** The open sockets (ConnectionRegistry); a socket leaves it when its close handler ran. */
  open: { readonly size: number; values(): Iterable<T> };
  /** Closes one socket as drained; false when it was already closing (nothing was done). */
  close(conn: T): boolean;
  delayMs: number;
  windowMs: number;
  /** Wall-clock time (Date.now) when the grace runs out: whatever is still open closes then. */
  deadlineMs: number;
  /** Aborted to close whatever is still open at once (a second SIGTERM). */
  hurry: AbortSignal;
  log: Logger;
}

export interface DrainResult {
  /** Sockets this drain closed (clients that left by themselves meanwhile are not counted). */
  closed: number;
  /** Sockets closed by each slice, in order. */
  slices: number[];
  /** Sockets closed at once after the slices (hurried, out of grace, or opened late). */
  atOnce: number;
  /** Why the rest was closed at once, if it was. */
  cut?: "hurried" | "grace";
}

/** Closes every socket of `deps.open` gradually; resolves once none is left open by it. */
export async function drainSockets<T>(deps: DrainDeps<T>): Promise<DrainResult> {
  const { open, hurry, deadlineMs } = deps;
  const slices: number[] = [];
  const result: DrainResult = { closed: 0, slices, atOnce: 0 };
  const stopWaiting = () => hurry.aborted || Date.now() >= deadlineMs;
  // No socket, nobody to send elsewhere: the delay would only hold up the stop.
  if (open.size > 0) await delay(until(Date.now() + deps.delayMs, deadlineMs), hurry);
  const count = drainSliceCount(deps.windowMs);
  const sliceMs = deps.windowMs / count;
  const windowStart = Date.now();
  for (let k = 0; k < count && open.size > 0 && !stopWaiting(); k++) {
    // An even share of what is left: clients that left early shrink the later slices.
    slices.push(closeSome(deps, Math.ceil(open.size / (count - k))));
    if (k + 1 === count) break;
    // A late timer must not bunch two slices together: at least half a slice apart.
    const next = Math.max(windowStart + (k + 1) * sliceMs, Date.now() + sliceMs / 2);
    await delay(until(next, deadlineMs), hurry);
  }
  if (open.size > 0) {
    // Hurried, out of grace, or a socket that opened after the upgrades were refused.
    if (stopWaiting()) result.cut = hurry.aborted ? "hurried" : "grace";
    result.atOnce = closeSome(deps, open.size);
  }
  result.closed = slices.reduce((a, b) => a + b, result.atOnce);
  if (result.cut) deps.log.warn({ cut: result.cut, closed: result.closed }, "drain cut short");
  return result;
}

/** Closes up to `share` open sockets; returns how many it closed. */
function closeSome<T>(deps: DrainDeps<T>, share: number): number {
  let closed = 0;
  // Closing runs the close handler, which removes the socket from `open` (safe mid-iteration).
  for (const conn of deps.open.values()) {
    if (closed >= share) break;
    if (deps.close(conn)) closed++;
  }
  return closed;
}

/** Milliseconds from now to `atMs`, but never past the deadline, never negative. */
function until(atMs: number, deadlineMs: number): number {
  return Math.max(0, Math.min(atMs, deadlineMs) - Date.now());
}
