// The part of a heartbeat-based Membership that does not depend on where the heartbeats are
// kept: one loop per member that renews and rereads the live set every heartbeat interval, the
// view, and change notification. MemoryMembership and RedisMembership supply the two store
// steps.
import { delay, retryDelayMs } from "../async/delay.js";
import type { Logger } from "../log.js";
import type { Membership, MembershipListener, MembershipOptions } from "./membership.js";
import { MembershipView } from "./membership-view.js";

type Renewal = { live: string[] } | { err: unknown };

/** `promise`'s value, or undefined once `ms` passed first; leaves no timer behind. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>(
        (resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, ms))),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export abstract class HeartbeatMembership implements Membership {
  private readonly view = new MembershipView((err) =>
    this.log.error({ err }, "membership listener failed"),
  );
  private memberId: string | undefined;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private joinedAt = 0;

  constructor(
    protected readonly options: MembershipOptions,
    private readonly log: Logger,
  ) {
    if (!(options.ttlMs > options.heartbeatIntervalMs))
      throw new Error(
        `membership ttl (${options.ttlMs} ms) must exceed the heartbeat interval (${options.heartbeatIntervalMs} ms), or a live member would expire between two renewals`,
      );
  }

  /** Renews `memberId`'s expiry to now + ttl and returns the live member ids (any order). */
  protected abstract renew(memberId: string): Promise<string[]>;

  /** Removes `memberId` from the live set. */
  protected abstract remove(memberId: string): Promise<void>;

  async join(memberId: string): Promise<void> {
    if (memberId === "") throw new Error("a member id must not be empty");
    if (this.memberId !== undefined || this.stop.signal.aborted)
      throw new Error("a Membership instance joins once");
    this.memberId = memberId;
    this.joinedAt = performance.now();
    this.update(await this.renew(memberId));
    this.loop = this.heartbeat(memberId, this.stop.signal);
  }

  members(): readonly string[] {
    return this.view.members();
  }

  onChange(listener: MembershipListener): () => void {
    return this.view.onChange(listener);
  }

  async leave(): Promise<void> {
    await this.stopLoop();
    if (this.memberId !== undefined) await this.remove(this.memberId);
    this.update([]);
  }

  async close(): Promise<void> {
    await this.stopLoop();
  }

  private async stopLoop(): Promise<void> {
    this.stop.abort();
    // No renewal may land after a leave's removal: wait for the one in flight, but not for
    // ever on a store that hangs (a renewal that lands later keeps the member at most ttlMs).
    if (this.loop) await within(this.loop, this.options.ttlMs);
  }

  private async heartbeat(memberId: string, signal: AbortSignal): Promise<void> {
    let failures = 0;
    // When the last successful renewal was sent: the member's expiry is at most ttlMs later.
    let renewedAt = this.joinedAt;
    while (!signal.aborted) {
      await delay(
        failures === 0
          ? this.options.heartbeatIntervalMs
          : Math.min(this.options.heartbeatIntervalMs, retryDelayMs(failures - 1)),
        signal,
      );
      if (signal.aborted) return;
      const sentAt = performance.now();
      const renewal: Promise<Renewal> = this.renew(memberId).then(
        (live) => ({ live }),
        (err: unknown) => ({ err }),
      );
      let outcome = await within(renewal, renewedAt + this.options.ttlMs - sentAt);
      if (outcome === undefined) {
        // Unrenewed for ttlMs (a store that hangs rather than fails), the others have dropped
        // this member: it must not go on believing it is one, and owning shards by that.
        this.update([]);
        outcome = await renewal;
      }
      if (signal.aborted) return;
      if ("live" in outcome) {
        this.update(outcome.live);
        renewedAt = sentAt;
        failures = 0;
      } else {
        failures++;
        this.log.warn({ err: outcome.err, memberId, failures }, "membership heartbeat failed");
        if (performance.now() - renewedAt >= this.options.ttlMs) this.update([]);
      }
    }
  }

  private update(ids: Iterable<string>): void {
    this.view.set(ids);
  }
}
