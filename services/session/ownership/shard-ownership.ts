// Which shards this session member serves (DESIGN.md, "Sharding and membership"). Rendezvous
// hashing over the live members (or a fixed --shards list) says which shards the member WANTS;
// it SERVES a shard only while it holds the shard's lease. Every tick it:
// - renews the leases it holds (a lease it cannot renew is lost: it stops serving that shard at
//   once; fencing already refuses its late writes);
// - hands over the shards it holds but no longer wants (a member joined): the host finishes the
//   work in flight and saves, then the lease is released, so the new owner waits only for that;
// - tries to take the shards it wants and does not hold: it gets each lease only once the
//   previous holder released it or its lease lapsed (kill -9, pause), so two members never serve
//   one shard, whatever their views of the membership say.
// Starting and stopping shards run beside the ticks, so a slow handover never delays renewals.
import { delay } from "../../shared/async/delay.js";
import type { Logger } from "../../shared/log.js";
import type { Lease, ShardLeases } from "../../shared/leases/shard-leases.js";
import type { Membership } from "../../shared/membership/membership.js";
import { shardsOf } from "../../shared/membership/rendezvous.js";

/** What serving a shard means; implemented by the session (shard-host.ts). */
export interface ShardHost {
  /** Starts serving `shard` under `lease`: loads its connection snapshots, starts reading. */
  start(shard: number, lease: Lease): Promise<void>;
  /**
   * Stops serving `shard`. Planned (a handover, a clean exit): the work in flight finishes and
   * is saved while the lease is still held. Not planned (the lease is lost): at once. Resolves
   * when nothing of the shard runs any more and its connections are out of memory.
   */
  stop(shard: number, planned: boolean): Promise<void>;
}

export interface ShardOwnershipOptions {
  memberId: string;
  shardCount: number;
  /** A fixed list of wanted shards (--shards): the membership is not consulted. */
  fixedShards?: readonly number[];
  leaseTtlMs: number;
  log: Logger;
  /** Told of every lease taken, handed over (released) or lost (metrics). */
  onChange?: (change: "taken" | "released" | "lost") => void;
}

type HeldState = "starting" | "serving" | "stopping";

interface Held {
  lease: Lease;
  state: HeldState;
}

export class ShardOwnership {
  private readonly held = new Map<number, Held>();
  /** Starts and stops in progress, awaited on close. */
  private readonly transitions = new Set<Promise<void>>();
  private wake: () => void = () => undefined;
  /**
   * Wanted shards whose lease another member holds: when it lapses unless renewed. A tick is
   * scheduled for that moment, so a dead member's shards are taken when its leases lapse, not
   * up to a tick later.
   */
  private readonly blockedUntil = new Map<number, number>();
  private readonly wakeTimers = new Set<NodeJS.Timeout>();
  private firstTickDone!: () => void;
  private readonly firstTickSettled = new Promise<void>(
    (resolve) => (this.firstTickDone = resolve),
  );
  private readonly renewEveryMs: number;
  private readonly tickMs: number;

  constructor(
    private readonly membership: Membership,
    private readonly leases: ShardLeases,
    private readonly host: ShardHost,
    private readonly options: ShardOwnershipOptions,
  ) {
    // Three renewals per lease time: two can fail (a slow Redis) before the lease lapses.
    this.renewEveryMs = Math.floor(options.leaseTtlMs / 3);
    // How soon a released or lapsed lease is taken by its next owner.
    this.tickMs = Math.min(250, Math.floor(options.leaseTtlMs / 6));
  }

  /** The lease under which `shard` is served, while it is held (also while stopping). */
  leaseOf(shard: number): Lease | undefined {
    const held = this.held.get(shard);
    if (!held || held.lease.expiresAtMs <= Date.now()) return undefined;
    return held.lease;
  }

  /** The shards being served now (started, not stopping), ascending. */
  serving(): number[] {
    return [...this.held]
      .filter(([, h]) => h.state === "serving")
      .map(([shard]) => shard)
      .sort((a, b) => a - b);
  }

  /** The shards this member should serve by the current membership. */
  wanted(): number[] {
    const { fixedShards, memberId, shardCount } = this.options;
    if (fixedShards) return this.membership.members().includes(memberId) ? [...fixedShards] : [];
    return shardsOf(memberId, this.membership.members(), shardCount);
  }

  /**
   * A fenced write of `shard` was refused: another member holds it now. Stop serving it at
   * once; the next owner handles what was not acknowledged.
   */
  stepDown(shard: number): void {
    const held = this.held.get(shard);
    if (!held || held.state === "stopping") return;
    this.options.log.warn({ shard, token: held.lease.token }, "shard lease lost; stepping down");
    this.stop(shard, held, false);
  }

  /**
   * Resolves once run() has made its first pass and the shards it took then are served (or
   * failed to start), so a new member does not report ready before it serves anything free.
   */
  firstTick(): Promise<void> {
    return this.firstTickSettled;
  }

  /**
   * Runs until `signal` aborts, then hands every shard over (planned): the caller should have
   * left the membership first, so the others already want them.
   */
  async run(signal: AbortSignal): Promise<void> {
    const unsubscribe = this.membership.onChange(() => this.wake());
    try {
      while (!signal.aborted) {
        await this.tick();
        if (this.transitions.size > 0) await Promise.all(this.transitions);
        this.firstTickDone();
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          void delay(this.tickMs, signal).then(resolve);
        });
      }
    } finally {
      this.firstTickDone();
      unsubscribe();
      for (const timer of this.wakeTimers) clearTimeout(timer);
      this.wakeTimers.clear();
      await this.releaseAll();
    }
  }

  private async tick(): Promise<void> {
    await this.renewDue();
    const wanted = new Set(this.wanted());
    for (const [shard, held] of this.held)
      if (held.state === "serving" && !wanted.has(shard)) this.stop(shard, held, true);
    const free = [...wanted].filter((shard) => !this.held.has(shard));
    await Promise.all(free.map((shard) => this.tryTake(shard)));
  }

  private async renewDue(): Promise<void> {
    const now = Date.now();
    const due = [...this.held].filter(
      ([, h]) => h.lease.expiresAtMs - now <= this.options.leaseTtlMs - this.renewEveryMs,
    );
    await Promise.all(
      due.map(async ([shard, held]) => {
        let renewed: Lease | undefined;
        try {
          renewed = await this.leases.renew(held.lease);
        } catch (err) {
          // Not known to be lost: serve on while the lease surely lasts, then stop.
          if (held.lease.expiresAtMs > Date.now() + this.tickMs) {
            this.options.log.warn({ err, shard }, "renewing a shard lease failed; will retry");
            return;
          }
          this.options.log.error({ err, shard }, "shard lease could not be renewed in time");
        }
        if (this.held.get(shard) !== held) return;
        if (renewed) held.lease = renewed;
        else if (held.state !== "stopping") {
          this.options.log.warn({ shard, token: held.lease.token }, "shard lease lost");
          this.stop(shard, held, false);
        }
      }),
    );
  }

  private async tryTake(shard: number): Promise<void> {
    let lease: Lease | undefined;
    try {
      lease = await this.leases.acquire(shard, this.options.memberId);
    } catch (err) {
      this.options.log.warn({ err, shard }, "taking a shard lease failed; will retry");
      return;
    }
    if (!lease) {
      // Still held by another member (or our own previous process).
      await this.wakeAtExpiry(shard);
      return;
    }
    this.blockedUntil.delete(shard);
    const held: Held = { lease, state: "starting" };
    this.held.set(shard, held);
    this.options.log.info({ shard, token: lease.token }, "shard lease taken; serving");
    this.options.onChange?.("taken");
    this.track(
      this.host.start(shard, lease).then(
        () => {
          if (held.state === "starting") held.state = "serving";
        },
        (err: unknown) => {
          this.options.log.error({ err, shard }, "starting a shard failed; giving it up");
          this.stop(shard, held, false);
        },
      ),
    );
  }

  /** Schedules a tick for when `shard`'s lease lapses unless renewed (once per renewal). */
  private async wakeAtExpiry(shard: number): Promise<void> {
    if ((this.blockedUntil.get(shard) ?? 0) > Date.now()) return;
    let holder: Lease | undefined;
    try {
      holder = await this.leases.holder(shard);
    } catch {
      return; // the ticks go on regardless
    }
    if (!holder) return;
    this.blockedUntil.set(shard, holder.expiresAtMs);
    const timer = setTimeout(
      () => {
        this.wakeTimers.delete(timer);
        this.wake();
      },
      Math.max(0, holder.expiresAtMs - Date.now()) + 10,
    );
    timer.unref();
    this.wakeTimers.add(timer);
  }

  /** Stops serving a shard; a planned stop releases the lease once the host is done. */
  private stop(shard: number, held: Held, planned: boolean): void {
    if (held.state === "stopping") return;
    held.state = "stopping";
    this.track(
      (async () => {
        try {
          await this.host.stop(shard, planned);
          if (!planned) this.options.onChange?.("lost");
          else if (await this.leases.release(held.lease)) {
            this.options.log.info({ shard }, "shard handed over; lease released");
            this.options.onChange?.("released");
          }
        } catch (err) {
          // The lease then lapses by itself; the next owner waits for that instead.
          this.options.log.warn({ err, shard }, "handing a shard over failed");
        } finally {
          if (this.held.get(shard) === held) this.held.delete(shard);
        }
      })(),
    );
  }

  private track(transition: Promise<void>): void {
    this.transitions.add(transition);
    void transition.finally(() => this.transitions.delete(transition));
  }

  /** Planned stop of every shard; renewals go on meanwhile, so no lease lapses mid-drain. */
  private async releaseAll(): Promise<void> {
    for (const [shard, held] of this.held) this.stop(shard, held, true);
    while (this.transitions.size > 0) {
      const settled = Promise.all(this.transitions);
      const renewing = (async () => {
        const controller = new AbortController();
        void settled.finally(() => controller.abort());
        while (!controller.signal.aborted) {
          await this.renewDue();
          await delay(this.tickMs, controller.signal);
        }
      })();
      await settled;
      await renewing;
    }
  }
}
