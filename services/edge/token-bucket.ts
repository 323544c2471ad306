// A token bucket measured in bytes: it holds at most `capacityBytes` and refills at
// `refillBytesPerSecond`. Refilled lazily from the caller's clock, so it needs no timer.
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

  /** Takes `bytes` if the bucket holds them; otherwise takes nothing and returns false. */
  take(bytes: number, nowMs: number): boolean {
    const elapsedMs = nowMs - this.lastMs;
    if (elapsedMs > 0) {
      this.tokens = Math.min(
        this.capacityBytes,
        this.tokens + (elapsedMs * this.refillBytesPerSecond) / 1000,
      );
      this.lastMs = nowMs;
    }
    if (bytes > this.tokens) return false;
    this.tokens -= bytes;
    return true;
  }
}
