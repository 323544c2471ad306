// Push-back from shards that fall behind (issue 6, item 9). A shard whose session is down (or
// cannot keep up) gets no reader, and every frame the edges publish to it stays in Redis. Each
// edge therefore watches the inbox of every shard it assigns connections to and stops publishing
// to one that is more than maxInboxLagEntries behind: its connections' frames are held in the
// edge (publisher.ts, within inboundBurstBytes per connection and edgeMaxHeldBytes per edge) and
// new connections go to other shards. Below half the bound it publishes again, held frames first.
//
// The gate is closed by either of two signals:
// - the sampled lag (every shardLagSampleIntervalMs, XINFO GROUPS + XLEN for all shards at once
//   on the writer, in one write) reaches the bound: every edge sees it;
// - the sampled lag plus what this edge published to the shard since that sample reaches it: so
//   between samples one edge adds at most the bound to a shard, however fast its clients send.
// Together: a shard's unread entries stay under about maxInboxLagEntries × edges, plus each
// edge's writes in flight (maxInflightPublishes), and under maxInboxLagEntries + what the edges
// write in one sample interval, whichever is less. A side effect: one edge publishes at most
// maxInboxLagEntries entries per sample interval to one shard (10,000/s by default), far more
// than one shard's session handles.
import { delay } from "../shared/async/delay.js";
import type { Bus, ShardBacklog } from "../shared/bus/bus.js";
import type { Logger } from "../shared/log.js";

interface ShardState {
  /** Last sample; undefined before the first one. */
  sampled: ShardBacklog | undefined;
  /** Packets this edge published to the shard, ever. */
  published: number;
  /** `published` when the last sample that answered was asked for. */
  publishedAtSample: number;
  closed: boolean;
}

/** Taken when a sample is asked for: what each shard had been sent by then. */
export type SampleMark = ReadonlyMap<number, number>;

export class ShardLagGate {
  private readonly states = new Map<number, ShardState>();
  private closedCount = 0;
  private disabled = false;

  /** `shards`: the shards this edge may publish to and samples; `maxLagEntries`: the bound. */
  constructor(
    readonly shards: readonly number[],
    private readonly maxLagEntries: number,
  ) {
    for (const shard of shards)
      this.states.set(shard, {
        sampled: undefined,
        published: 0,
        publishedAtSample: 0,
        closed: false,
      });
  }

  /** Whether packets for `shard` may be published now. */
  isOpen(shard: number): boolean {
    return this.disabled || !this.states.get(shard)?.closed;
  }

  /** Shards whose gate is closed. */
  get closedShards(): number {
    return this.closedCount;
  }

  /** The last sample of `shard`, if any. */
  backlog(shard: number): ShardBacklog | undefined {
    return this.states.get(shard)?.sampled;
  }

  /**
   * One packet was handed to the bus for `shard`. True if that closed its gate: the lag this
   * edge knows of (last sample plus its own writes since) reached the bound.
   */
  published(shard: number): boolean {
    const state = this.states.get(shard);
    if (!state) return false;
    state.published++;
    const lag = (state.sampled?.lag ?? 0) + state.published - state.publishedAtSample;
    if (state.closed || lag < this.maxLagEntries) return false;
    this.close(state);
    return true;
  }

  /** Call just before asking for a sample; pass the mark to sampled(). */
  mark(): SampleMark {
    return new Map([...this.states].map(([shard, state]) => [shard, state.published]));
  }

  /**
   * A sample asked for at `mark` answered. Closes the shards at or past the bound, and opens the
   * closed ones below half of it; returns the shards it opened.
   */
  sampled(samples: ReadonlyMap<number, ShardBacklog>, mark: SampleMark): number[] {
    const opened: number[] = [];
    for (const [shard, backlog] of samples) {
      const state = this.states.get(shard);
      if (!state) continue;
      state.sampled = backlog;
      state.publishedAtSample = mark.get(shard) ?? state.published;
      if (!state.closed && backlog.lag >= this.maxLagEntries) this.close(state);
      else if (state.closed && backlog.lag < this.maxLagEntries / 2) {
        state.closed = false;
        this.closedCount--;
        opened.push(shard);
      }
    }
    return opened;
  }

  /**
   * A shard for a new connection: uniformly among the open ones, or among all when every one is
   * closed (the upgrade was let through just before). `random(n)` is an integer in [0, n).
   * With `preferred`, among its open shards when there are any.
   */
  pick(random: (n: number) => number, preferred?: readonly number[]): number {
    // A node's edge prefers the shards its own session member serves (services.ts runNode).
    if (preferred !== undefined && preferred.length > 0) {
      const mine = preferred.filter((shard) => this.states.has(shard) && this.isOpen(shard));
      if (mine.length > 0) return mine[random(mine.length)];
    }
    const open =
      this.closedCount === 0 || this.disabled
        ? this.shards
        : this.shards.filter((shard) => this.isOpen(shard));
    const candidates = open.length > 0 ? open : this.shards;
    return candidates[random(candidates.length)];
  }

  /** Whether every shard is closed: a new connection would only add held frames. */
  allClosed(): boolean {
    return !this.disabled && this.closedCount === this.shards.length;
  }

  /** Opens every gate for good (a stopping edge publishes its close packets whatever the lag). */
  disable(): void {
    this.disabled = true;
  }

  private close(state: ShardState): void {
    state.closed = true;
    this.closedCount++;
  }
}

export interface ShardLagSamplerDeps {
  bus: Bus;
  gate: ShardLagGate;
  intervalMs: number;
  log: Logger;
  /** Shards whose gate the sample opened: their held packets may go. */
  onOpened(shards: number[]): void;
}

/** Samples every shard of the gate each `intervalMs` until `signal` aborts. */
export async function runShardLagSampler(
  deps: ShardLagSamplerDeps,
  signal: AbortSignal,
): Promise<void> {
  const { bus, gate, intervalMs, log } = deps;
  while (!signal.aborted) {
    try {
      const mark = gate.mark();
      const backlogs = await Promise.all(gate.shards.map((shard) => bus.shardBacklog(shard)));
      const samples = new Map(gate.shards.map((shard, i) => [shard, backlogs[i]]));
      const wasClosed = new Set(gate.shards.filter((shard) => !gate.isOpen(shard)));
      const opened = gate.sampled(samples, mark);
      for (const shard of gate.shards)
        if (!gate.isOpen(shard) && !wasClosed.has(shard))
          log.warn(
            { shard, lag: samples.get(shard)?.lag },
            "shard inbox far behind: holding its frames",
          );
      for (const shard of opened)
        log.info({ shard, lag: samples.get(shard)?.lag }, "shard inbox caught up: publishing");
      if (opened.length > 0) deps.onOpened(opened);
    } catch (err) {
      // The gates keep their last state: a shard is not opened on a guess.
      log.warn({ err }, "sampling shard inbox lag failed");
    }
    await delay(intervalMs, signal);
  }
}
