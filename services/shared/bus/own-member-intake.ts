// When a packet from this process's edge may skip its shard's inbox and go to this process's
// session member in process (a node, or the all-in-one on Redis as the only member): the
// reverse of the in-process hand-over of replies (in-process-edge-bus.ts). A client frame then
// costs no XADD, no read and no acknowledgement: the member applies it as it applies an inbox
// entry, in the connection's turn.
//
// Durability. An inbox entry outlives the member that read it; a frame handed over in process
// does not. It need not: the socket it came from is in the same process, so whatever kills the
// member kills the socket too, and the client never learned that the frame was taken (with
// XEP-0198 its h says so: the member saves h only with the frame's effects). A member that
// loses the shard while it is alive (its lease lapsed in a pause) fails the unit (fencing):
// the edge then ends that connection (publisher.ts, `onFailure`), as for a failed XADD.
//
// Order. The connection's own frames must be applied in the order the socket gave them, and
// some of them may be in the inbox already: written while another member served the shard,
// while this member's read loop for it was restarting, or before the member's lease was
// taken. So a shard takes packets in process only while
// - a read loop of this member reads its inbox (serve; not once the loop is stopping, nor
//   after `stopped`), with at least READ_MARGIN_MS of its lease left, and
// - none of this bus's writes to its inbox is in flight, and everything up to the last one's
//   entry id has been handled (the loop's onHandled): a frame written there earlier cannot be
//   overtaken.
// Anything else goes through the inbox. A read loop ends only once the packets it took in
// process are applied (settled), so the next reader of the inbox (this member again, or the
// next owner once the lease is released) applies what the edge wrote there meanwhile after
// them. Ids are stream entry ids, compared as such: no clocks.
import { randomInt } from "node:crypto";
import type { ShardBatchHandler } from "./bus.js";
import { compareEntryIds, type ShardEntry, type ShardPacket } from "./packets.js";

/** A packet is taken in process only while the lease it is read under lasts this much longer. */
const READ_MARGIN_MS = 200;

/** What the member's read loop gives: how it applies entries, and how long it may. */
export interface IntakeLoop {
  handler: ShardBatchHandler;
  /** The lease's remaining time (ShardConsumeOptions.readableForMs); absent: forever. */
  readableForMs?: () => number;
}

/** The packets one read loop took in process, until they are applied. */
class ServedLoop {
  stopping = false;
  private inFlight = 0;
  private idle: (() => void)[] = [];

  constructor(readonly loop: IntakeLoop) {}

  readable(): boolean {
    return !this.stopping && (this.loop.readableForMs?.() ?? Infinity) > READ_MARGIN_MS;
  }

  apply(entry: ShardEntry): Promise<void> {
    this.inFlight++;
    const noAck = () => undefined;
    let applied: Promise<void>;
    try {
      applied = this.loop.handler([entry], noAck, noAck);
    } catch (err) {
      applied = Promise.reject(err);
    }
    const done = () => {
      if (--this.inFlight > 0) return;
      for (const resolve of this.idle.splice(0)) resolve();
    };
    applied.then(done, done);
    return applied;
  }

  /** Resolves once every packet taken is applied (or failed). */
  settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
}

/** Handle of one read loop's shards, for its end (OwnMemberIntake.serve). */
export interface ServedShards {
  /** Takes nothing more in process for these shards. */
  stop(): void;
  /** Resolves once what was taken is applied. */
  settled(): Promise<void>;
}

export class OwnMemberIntake {
  /** The read loop of each shard read now. */
  private readonly served = new Map<number, ServedLoop>();
  /** Writes of this bus to a shard inbox whose entry id is not known yet. */
  private readonly inboxWritesInFlight = new Map<number, number>();
  /** The entry id of this bus's last write to each shard inbox. */
  private readonly lastInboxWrite = new Map<number, string>();
  /** Everything up to this id has been handled, per shard. */
  private readonly handledUpTo = new Map<number, string>();
  /** Serials of in-process ids start at random, so a restarted process's ids differ. */
  private nextSerial = randomInt(2 ** 47);

  /** A read loop of this member reads `shards` from now on. */
  serve(shards: readonly number[], loop: IntakeLoop): ServedShards {
    const served = new ServedLoop(loop);
    for (const shard of shards) this.served.set(shard, served);
    return {
      stop: () => {
        served.stopping = true;
        for (const shard of shards)
          if (this.served.get(shard) === served) this.served.delete(shard);
      },
      settled: () => served.settled(),
    };
  }

  /** The member gives `shard` up: nothing more in process for it. */
  stopped(shard: number): void {
    const served = this.served.get(shard);
    if (!served) return;
    this.served.delete(shard);
    // Its loop stops too (shard-read-loops.ts) and settles before the shard is released.
  }

  /** Everything up to `lastId` in `shard`'s inbox has been handled (onHandled). */
  handled(shard: number, lastId: string): void {
    const before = this.handledUpTo.get(shard);
    if (before === undefined || compareEntryIds(lastId, before) > 0)
      this.handledUpTo.set(shard, lastId);
  }

  /** Whether a packet for `shard` may be handed over in process now. */
  allows(shard: number): boolean {
    const served = this.served.get(shard);
    if (!served?.readable() || (this.inboxWritesInFlight.get(shard) ?? 0) > 0) return false;
    const written = this.lastInboxWrite.get(shard);
    if (written === undefined) return true;
    const handled = this.handledUpTo.get(shard);
    return handled !== undefined && compareEntryIds(handled, written) >= 0;
  }

  /**
   * Hands `packet` to the member (the caller checked allows): resolves once it is applied,
   * with its in-process id; rejects if it could not be (the member gave the shard up).
   */
  async handOver(shard: number, packet: ShardPacket): Promise<string> {
    const served = this.served.get(shard);
    if (!served) throw new Error(`shard ${shard} is not served in process`);
    const entry: ShardEntry = { id: `0-${this.nextSerial++}`, shard, packet, inProcess: true };
    await served.apply(entry);
    return entry.id;
  }

  /** Tracks a write of this bus to `shard`'s inbox: nothing skips it until it is handled. */
  async viaInbox(shard: number, write: () => Promise<string>): Promise<string> {
    this.inboxWritesInFlight.set(shard, (this.inboxWritesInFlight.get(shard) ?? 0) + 1);
    try {
      const id = await write();
      const before = this.lastInboxWrite.get(shard);
      if (before === undefined || compareEntryIds(id, before) > 0)
        this.lastInboxWrite.set(shard, id);
      return id;
    } finally {
      const left = (this.inboxWritesInFlight.get(shard) ?? 1) - 1;
      if (left > 0) this.inboxWritesInFlight.set(shard, left);
      else this.inboxWritesInFlight.delete(shard);
    }
  }
}
