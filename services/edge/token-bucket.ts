// A token bucket whose tokens are bytes: it holds at most `capacityBytes` and refills at
// `refillBytesPerSecond`. Callers charge a frame's cost (frame-cost.ts), which is at least its
// size. Refilled lazily from the caller's clock, so it needs no timer.
const MS_PER_SECOND = 1000;

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly capacityBytes: number,
    private readonly refillBytesPerSecond: number,
    nowMs: number,
  ) {
    this.tokens = capacityBytes;
    this.lastMs = nowMs;
  }

  /** Takes `costBytes` tokens if the bucket holds them; otherwise takes none and returns false. */
  take(costBytes: number, nowMs: number): boolean {
    const elapsedMs = nowMs - this.lastMs;
    if (elapsedMs > 0) {
      this.tokens = Math.min(
        this.capacityBytes,
        this.tokens + (elapsedMs * this.refillBytesPerSecond) / MS_PER_SECOND,
      );
      this.lastMs = nowMs;
    }
    if (costBytes > this.tokens) return false;
    this.tokens -= costBytes;
    return true;
  }
}
