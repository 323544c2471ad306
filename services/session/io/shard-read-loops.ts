// The read loops of the shards a member serves. Inboxes the bus can read together (on one
// Redis server: all of them) share one loop, so one XREADGROUP waits on every shard and returns
// whatever arrived in any of them. One loop per shard cost a blocking read, a socket write and
// a reply per shard for each batch: under chat load most of them carried one or two entries.
//
// The set of shards changes as leases come and go. A loop reads a fixed set, so a change ends
// the loops whose set changed (their batches in flight are done and acknowledged first) and
// starts loops for the new sets; changes are applied one after the other, each from the set
// wanted when it runs, so a burst of them (a member starting, a rebalance) costs a few
// restarts, not one per shard.
import { LoopHealth } from "../../shared/async/loop-health.js";
import type { Bus, ShardBatchHandler } from "../../shared/bus/bus.js";
import type { Lease } from "../../shared/leases/shard-leases.js";

export interface ShardReadLoopsDeps {
  bus: Bus;
  consumerName: string;
  handle: ShardBatchHandler;
  /** Acknowledges a turn's entries, by shard (each through its lease). */
  acknowledge(acks: ReadonlyMap<number, readonly string[]>): Promise<void>;
  /** The lease a shard is read under, while it lasts. */
  leaseOf(shard: number): Lease | undefined;
  /** Everything up to `lastId` in `shard`'s inbox has been handled (ShardConsumeOptions). */
  handled(shard: number, lastId: string): void;
  /** A loop stopped by itself (it cannot go on): its shards are not read any more. */
  failed(shards: readonly number[], err: unknown): void;
}

interface Loop {
  /** Its shards, ascending, joined: the identity of the set it reads. */
  key: string;
  shards: readonly number[];
  controller: AbortController;
  health: LoopHealth;
  reading: Promise<void>;
}

export class ShardReadLoops {
  private readonly wanted = new Set<number>();
  private loops: Loop[] = [];
  private applying: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ShardReadLoopsDeps) {}

  /** Reads `shard` too; resolves once a loop reads it. */
  add(shard: number): Promise<void> {
    this.wanted.add(shard);
    return this.apply();
  }

  /** Stops reading `shard`; resolves once no loop reads it and its batches in flight are done. */
  remove(shard: number): Promise<void> {
    this.wanted.delete(shard);
    return this.apply();
  }

  /** Whether every loop progresses (for /readyz); true with none. */
  isHealthy(staleMs: number): boolean {
    return this.loops.every((loop) => loop.health.isHealthy(staleMs));
  }

  private apply(): Promise<void> {
    this.applying = this.applying.then(() => this.reconcile());
    return this.applying;
  }

  private async reconcile(): Promise<void> {
    const groups = this.deps.bus.readingGroups([...this.wanted].sort((a, b) => a - b));
    const keys = new Set(groups.map((shards) => shards.join(",")));
    const ending = this.loops.filter((loop) => !keys.has(loop.key));
    this.loops = this.loops.filter((loop) => keys.has(loop.key));
    for (const loop of ending) loop.controller.abort();
    await Promise.all(ending.map((loop) => loop.reading));
    const running = new Set(this.loops.map((loop) => loop.key));
    for (const shards of groups)
      if (!running.has(shards.join(","))) this.loops.push(this.start(shards));
  }

  private start(shards: readonly number[]): Loop {
    const loop: Loop = {
      key: shards.join(","),
      shards,
      controller: new AbortController(),
      health: new LoopHealth(),
      reading: Promise.resolve(),
    };
    const { deps } = this;
    loop.reading = deps.bus
      .consumeShards([...shards], deps.consumerName, deps.handle, loop.controller.signal, {
        health: loop.health,
        acknowledge: (acks) => deps.acknowledge(acks),
        // Until the first lease of the set ends: reading goes on only while every one lasts. A
        // lease that lapses without renewal pauses the whole loop until ownership stops that
        // shard (its next renewal fails), which then restarts the loop without it.
        readableForMs: () =>
          Math.min(...shards.map((s) => deps.leaseOf(s)?.expiresAtMs ?? 0)) - Date.now(),
        onHandled: (shard, lastId) => {
          // A loop being replaced still reports its last batches: true for a shard read on.
          if (this.wanted.has(shard)) deps.handled(shard, lastId);
        },
      })
      .catch((err: unknown) => {
        if (!this.loops.includes(loop)) return;
        this.loops = this.loops.filter((l) => l !== loop);
        for (const shard of shards) this.wanted.delete(shard);
        deps.failed(shards, err);
      });
    return loop;
  }
}
