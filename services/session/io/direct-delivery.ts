// Two-hop delivery (docs/capacity.md) as one session member sees it: whether a stanza for a
// connection of a shard served by another member may go straight to that connection's edge
// (Bus.direct), without overtaking a stanza this member routed through the shard's inbox
// earlier (RFC 6120 §10.1, RFC 6121 §8: per-sender order). The member remembers the last entry
// it wrote to each shard inbox (its mark), and the direct write checks, in the same Redis step,
// that the shard's group has handled it. Earlier stanzas can also be:
// - in flight: a write to the inbox (a route, or a direct write that may fall back to one) whose
//   entry id is not known yet; while one is, the next stanzas to that shard go through the
//   inbox too, behind it (what LocalDelivery does for local delivery);
// - written by the previous owner of a shard this member takes over (a sender's connection
//   moved here): every inbox's end, read once the lease is ours, becomes a mark, and no direct
//   write is tried until those ends are read.
// Ids are stream entry ids, compared as such, so no clocks are involved.
import type { DirectOutcome, DirectWrite, DirectWriter } from "../../shared/bus/bus.js";
import { compareEntryIds } from "../../shared/bus/packets.js";

export class DirectDelivery {
  /** The last entry id this member wrote to each shard inbox. */
  private readonly marks = new Map<number, string>();
  /** A mark a direct write found handled: later writes need not have it checked again. */
  private readonly handled = new Map<number, string>();
  /** Writes to a shard inbox not stored yet (their ids unknown), per shard. */
  private readonly inFlight = new Map<number, number>();
  /**
   * Shards whose last inbox write failed: it may be stored all the same, with an id nobody
   * knows. Direct writes wait for the next inbox write that succeeds (stream ids only grow).
   */
  private readonly unknown = new Set<number>();
  /** Takeovers whose inbox ends are being read. */
  private takingOver = 0;

  constructor(private readonly writer: DirectWriter) {}

  /** Whether a stanza for a connection of `shard` may be offered to its edge now. */
  allows(shard: number): boolean {
    return (
      this.takingOver === 0 && (this.inFlight.get(shard) ?? 0) === 0 && !this.unknown.has(shard)
    );
  }

  /**
   * Writes `direct` to its edge, or into `shard`'s inbox when the writer finds that unsafe
   * (the check is the writer's, in one step). The mark and the in-flight count are taken
   * before the first await: the caller may issue its next write at once.
   */
  write(shard: number, direct: Omit<DirectWrite, "mark">): Promise<DirectOutcome> {
    const mark = this.uncheckedMark(shard);
    return this.tracked<DirectOutcome>(shard, async () => {
      const outcome = await this.writer.write({ ...direct, mark });
      if (outcome.path === "edge") {
        if (mark !== "") this.handled.set(shard, mark);
        return [outcome, undefined];
      }
      return [outcome, outcome.inboxId];
    });
  }

  /** Tracks a write to `shard`'s inbox: direct writes wait until it is stored and handled. */
  viaInbox(shard: number, write: () => Promise<string>): Promise<string> {
    return this.tracked(shard, async () => {
      const id = await write();
      return [id, id];
    });
  }

  /**
   * A shard is being taken over: no direct write until `readEnds` (the inbox end of every
   * shard, read now that the lease is ours) is read, and each end becomes that shard's mark.
   */
  async takeOver<T extends ReadonlyMap<number, string>>(readEnds: () => Promise<T>): Promise<T> {
    this.takingOver++;
    try {
      const ends = await readEnds();
      for (const [shard, end] of ends) this.raise(shard, end);
      return ends;
    } finally {
      this.takingOver--;
    }
  }

  /** The mark a direct write to `shard` must have checked; "" when none or already found handled. */
  private uncheckedMark(shard: number): string {
    const mark = this.marks.get(shard);
    if (mark === undefined) return "";
    const handled = this.handled.get(shard);
    return handled !== undefined && compareEntryIds(handled, mark) >= 0 ? "" : mark;
  }

  private async tracked<T>(
    shard: number,
    write: () => Promise<[T, string | undefined]>,
  ): Promise<T> {
    this.inFlight.set(shard, (this.inFlight.get(shard) ?? 0) + 1);
    try {
      const [result, inboxId] = await write();
      if (inboxId !== undefined) {
        this.raise(shard, inboxId);
        this.unknown.delete(shard);
      }
      return result;
    } catch (err) {
      this.unknown.add(shard);
      throw err;
    } finally {
      const left = (this.inFlight.get(shard) ?? 1) - 1;
      if (left > 0) this.inFlight.set(shard, left);
      else this.inFlight.delete(shard);
    }
  }

  private raise(shard: number, id: string): void {
    const before = this.marks.get(shard);
    if (before === undefined || compareEntryIds(id, before) > 0) this.marks.set(shard, id);
  }
}
