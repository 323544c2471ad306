// XEP-0124 §14.3 (request identifiers): what a request's rid means relative to the rids the
// session has seen. Pure.
import type { BoshState } from "./bosh-state.js";

export type RidVerdict =
  /** The next rid in order: apply it now. */
  | "next"
  /** Ahead of a missing rid, within the window: keep it until the gap fills. */
  | "early"
  /** Already applied and answered: send the same answer again. */
  | "replay"
  /** Already applied, still held (its edge died, the client retried): hold it at the new edge. */
  | "held"
  /** Already seen and not answered yet: the earlier copy is waiting too. */
  | "duplicate"
  /** Outside the window (§14.3): the session is terminated with item-not-found. */
  | "out-of-window";

export function classifyRid(state: BoshState, rid: number): RidVerdict {
  if (rid === state.rid + 1) return "next";
  if (rid > state.rid + 1) {
    if (rid > state.rid + state.requests) return "out-of-window";
    return state.early.some((e) => e.rid === rid) ? "duplicate" : "early";
  }
  if (state.held.some((h) => h.rid === rid)) return "held";
  if (state.sent.some((s) => s.rid === rid)) return "replay";
  return "out-of-window";
}

/**
 * Forgets what rid `rid` (and the client's `ack`, §9.1) shows the client no longer needs: it
 * has at most `requests` outstanding, so every rid at or below rid - requests was answered and
 * received. Held entries that low were answered before a failover and not saved: dropping them
 * keeps a later stanza from going into an answer nobody waits for.
 */
export function forgetAcknowledged(state: BoshState, rid: number, ack?: number): void {
  let floor = rid - state.requests;
  if (ack !== undefined && ack < rid) floor = Math.max(floor, ack);
  state.held = state.held.filter((h) => h.rid > floor);
  state.sent = state.sent.filter((s) => s.rid > floor);
}
