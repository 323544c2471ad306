// Two-hop delivery (docs/capacity.md) as one session member sees it: whether a stanza for a
// connection of a shard served by another member may go straight to that connection's edge
// (Bus.direct), without overtaking a stanza this member put in the shard's inbox earlier
// (RFC 6120 §10.1, RFC 6121 §8: per-sender order). The direct write checks, in the same Redis
// step, that the shard's group has handled the member's order mark for that shard: the last
// entry the member knows it wrote there (its routes; a direct write that fell back to the inbox
// is remembered by the bus itself, in that step, so later direct writes need not wait for its
// answer). Earlier stanzas can also be:
// - in flight: a route write whose entry id is not known yet; while one is, the next stanzas
//   to that shard go through the inbox too, behind it (what LocalDelivery does for local
//   delivery);
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
  /** Routes into a shard inbox not stored yet (their ids unknown), per shard. */
  private readonly inFlight = new Map<number, number>();
  /**
   * Shards whose last route failed: it may be stored all the same, with an id nobody knows.
   * Direct writes wait for the next route that succeeds (stream ids only grow).
   */
  private readonly unknown = new Set<number>();
  /** Takeovers whose inbox ends are being read. */
  private takingOver = 0;
  /** The next read of every inbox end, not started yet: takeovers until it starts share it. */
  private nextRead: Promise<ReadonlyMap<number, string>> | undefined;

  constructor(
    private readonly writer: DirectWriter,
    /** This member's id, under which the bus remembers its direct writes' fallbacks. */
    private readonly member: string,
    /** The inbox end of every shard of the deployment (Bus.shardInboxEnd). */
    private readonly readEnds: () => Promise<ReadonlyMap<number, string>>,
  ) {}

  /** Whether a stanza for a connection of `shard` may be offered to its edge now. */
  allows(shard: number): boolean {
    return (
      this.takingOver === 0 && (this.inFlight.get(shard) ?? 0) === 0 && !this.unknown.has(shard)
    );
  }

  /**
   * Writes `direct` to its edge, or into `shard`'s inbox when the writer finds that unsafe
   * (the check is the writer's, in one step). Not in flight for the rule above: the writer
   * orders a fallback before every later direct write of this member by itself.
   */
  async write(shard: number, direct: Omit<DirectWrite, "mark" | "member">): Promise<DirectOutcome> {
    const mark = this.uncheckedMark(shard);
    const outcome = await this.writer.write({ ...direct, member: this.member, mark });
    if (outcome.path !== "edge") this.raise(shard, outcome.inboxId);
    else if (mark !== "") {
      const before = this.handled.get(shard);
      if (before === undefined || compareEntryIds(mark, before) > 0) this.handled.set(shard, mark);
    }
    return outcome;
  }

  /** Tracks a route into `shard`'s inbox: direct writes wait until it is stored and handled. */
  async viaInbox(shard: number, write: () => Promise<string>): Promise<string> {
    this.inFlight.set(shard, (this.inFlight.get(shard) ?? 0) + 1);
    try {
      const id = await write();
      this.raise(shard, id);
      this.unknown.delete(shard);
      return id;
    } catch (err) {
      this.unknown.add(shard);
      throw err;
    } finally {
      const left = (this.inFlight.get(shard) ?? 1) - 1;
      if (left > 0) this.inFlight.set(shard, left);
      else this.inFlight.delete(shard);
    }
  }

  /**
   * A shard is being taken over (its lease is ours): no direct write until every inbox end is
   * read, after this call, and each end becomes that shard's mark. Takeovers that start
   * together (a member taking many shards) share one read, which starts after all of them.
   */
  async takeOver(): Promise<void> {
    this.takingOver++;
    try {
      this.nextRead ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.nextRead = undefined;
        return this.readEnds();
      });
      for (const [shard, end] of await this.nextRead) this.raise(shard, end);
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

  private raise(shard: number, id: string): void {
    const before = this.marks.get(shard);
    if (before === undefined || compareEntryIds(id, before) > 0) this.marks.set(shard, id);
  }
}
