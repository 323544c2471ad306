// When each held bench client sends its whitespace keepalive (--keepalive). The edge closes a
// connection that sends no message for idleTimeoutMs (300 s by default; WebSocket pings do not
// count); answers to the sessions' XEP-0199 pings (every 120 s of silence) keep it away by
// default, keepalives when the edge's timeout is the shorter one. One timer per worker spreads
// the sends evenly (a burst of 15,000 frames every interval would be a load spike of its own),
// each client once per interval, round robin.

export class KeepaliveSchedule {
  private cursor = 0;
  /** Sends owed but not yet made (the fraction carries over to the next tick). */
  private owed = 0;
  private lastTickMs: number;

  constructor(
    private readonly intervalMs: number,
    nowMs: number,
  ) {
    if (!(intervalMs > 0)) throw new Error("a keepalive interval must be positive");
    this.lastTickMs = nowMs;
  }

  /**
   * The clients (indexes into a list of `count`) due at `nowMs`: count × elapsed / interval of
   * them, continuing round robin from where the last tick stopped. By elapsed time rather than
   * ticks, so that a late timer (a busy event loop) sends more, not less.
   */
  due(count: number, nowMs: number): number[] {
    const elapsedMs = Math.max(0, nowMs - this.lastTickMs);
    this.lastTickMs = nowMs;
    if (count === 0) return [];
    // At most one round per tick: no client is sent two keepalives at once.
    this.owed = Math.min(count, this.owed + (count * elapsedMs) / this.intervalMs);
    const n = Math.floor(this.owed);
    this.owed -= n;
    const indexes: number[] = [];
    for (let i = 0; i < n; i++) indexes.push((this.cursor + i) % count);
    this.cursor = (this.cursor + n) % count;
    return indexes;
  }
}
