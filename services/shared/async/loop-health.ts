// Whether a read loop really serves, for /readyz (DESIGN.md, failure model: "never green while
// dead"). A loop reports each completed read; a loop whose reads fail, or that has not completed
// one for longer than the staleness bound (stuck in a handler, wedged connection), is unhealthy.
// A loop that waits for work without a timeout (the in-process bus) says so: waiting is serving.

export class LoopHealth {
  private lastProgressMs = Date.now();
  private failing = false;
  private idle = false;

  /** A read completed (with or without entries). */
  progressed(): void {
    this.lastProgressMs = Date.now();
    this.failing = false;
    this.idle = false;
  }

  /** The loop waits for work that will wake it (no read is due until then). */
  waiting(): void {
    this.progressed();
    this.idle = true;
  }

  /** A read failed; the loop is retrying. */
  failed(): void {
    this.failing = true;
    this.idle = false;
  }

  isHealthy(staleMs: number): boolean {
    if (this.failing) return false;
    return this.idle || Date.now() - this.lastProgressMs <= staleMs;
  }
}
