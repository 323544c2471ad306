// When a packet from this process's edge may skip its shard's inbox and go to this process's
// session member in process (a node, or the all-in-one on Redis as the only member): the
// reverse of the in-process hand-over of replies (in-process-edge-bus.ts). A client frame then
// costs no XADD, no read and no acknowledgement: the member applies it as it applies an inbox
// entry, in the connection's turn.
//
// Durability. An inbox entry outlives the member that read it; a packet handed over in process
// lives in this process. That is enough: the socket it came from is in the same process, so
// whatever kills the member kills the socket too, and the client never learned that the packet
// was taken (with XEP-0198, its `h` counts a stanza only once the member stored its effects and
// state). While the process lives, a packet the member could not apply (it lost the shard's
// lease, or stopped with the unit failing) is written to the inbox after all, for the next
// owner, ahead of its connection's later packets that go there: the inbox's at-least-once,
// naming its in-process id (packets.ts `i`), so that its effects keep the origins they had
// here (a receiver drops a delivery already made) and a state saved with it applied skips it
// (ConnState.lastInProcessId).
//
// Units. The packets a socket gave in one turn of the event loop are handed over together,
// when the loop next checks (setImmediate): frames a client sent at once (its initial presence
// and roster query after binding, a stanza and its XEP-0198 <r/>) are applied as one unit,
// with one snapshot write, instead of a unit and a snapshot each. uWS runs the microtasks
// after each frame it gives, so a microtask would not gather them.
//
// Order. A connection's packets must be applied in the order its socket gave them, and some
// of them may be in the inbox: written while another member served the shard, while this
// member's read loop for it was restarting, or before the member's lease was taken. So a
// shard takes packets in process only while
// - a read loop of this member reads its inbox (serve; not once the loop is stopping, nor after
//   `stopped`), with at least READ_MARGIN_MS of its lease left, and
// - none of the edge's writes to its inbox is pending, and that loop itself has handled
//   everything up to the last one's entry id (a new loop starts knowing nothing handled: a
//   previous loop's reports can cover entries it dropped for a lost lease).
// Per connection, a write to the inbox is sent only once its connection's earlier packets are
// placed (applied, or written to the inbox themselves). A read loop ends only once the packets
// it took in process are settled, so the next reader of the inbox (this member again, or the
// next owner once the lease is released) applies what the edge wrote there meanwhile after
// them. Ids are stream entry ids, compared as such: no clocks.
import { randomInt } from "node:crypto";
import type { ShardBatchHandler } from "./bus.js";
import { compareEntryIds, type ShardEntry, type ShardPacket } from "./packets.js";

/** In-process entries are in no inbox: there is nothing to acknowledge. */
const NO_ACK = (): void => undefined;

/** A packet is taken in process only while the lease it is read under lasts this much longer. */
const READ_MARGIN_MS = 200;

/** The socket packets that may go in process. */
export type SocketPacket = Extract<ShardPacket, { k: "open" | "data" | "close" }>;

/** What the member's read loop gives: how it applies entries, and how long it may. */
export interface IntakeLoop {
  handler: ShardBatchHandler;
  /** The lease's remaining time (ShardConsumeOptions.readableForMs); absent: forever. */
  readableForMs?: () => number;
}

/** One read loop of the member: what it handled, and the packets it took in process. */
class ServedLoop {
  stopping = false;
  /** Everything up to this id has been handled by this loop, per shard. */
  readonly handledUpTo = new Map<number, string>();
  private inFlight = 0;
  private idle: (() => void)[] = [];
  /** Per connection, the packets taken since the event loop last checked (see Units above). */
  private readonly gathering = new Map<string, Gathered>();

  constructor(readonly loop: IntakeLoop) {}

  /**
   * When the loop's leases end, as last read: asked again only near it (leases are renewed
   * long before they end), since it looks at every shard of the loop and every packet asks.
   * A lease lost before it ends stops the loop (shard-read-loops.ts), and the member's
   * handler refuses a packet of a shard whose lease it no longer holds.
   */
  private readableUntilMs = 0;

  readable(): boolean {
    if (this.stopping) return false;
    const now = Date.now();
    if (now + READ_MARGIN_MS < this.readableUntilMs) return true;
    this.readableUntilMs = now + (this.loop.readableForMs?.() ?? Infinity);
    return now + READ_MARGIN_MS < this.readableUntilMs;
  }

  handled(shard: number, lastId: string): void {
    const before = this.handledUpTo.get(shard);
    if (before === undefined || compareEntryIds(lastId, before) > 0)
      this.handledUpTo.set(shard, lastId);
  }

  apply(entry: ShardEntry): Promise<void> {
    this.inFlight++;
    let gathered = this.gathering.get(entry.packet.c);
    if (!gathered) {
      if (this.gathering.size === 0) setImmediate(() => this.handOver());
      gathered = new Gathered();
      this.gathering.set(entry.packet.c, gathered);
    }
    gathered.entries.push(entry);
    const applied = gathered.applied;
    const done = () => {
      if (--this.inFlight > 0) return;
      for (const resolve of this.idle.splice(0)) resolve();
    };
    applied.then(done, () => {
      // The member lost the shard or is stopping with a unit failing: its loop goes too.
      this.stopping = true;
      done();
    });
    return applied;
  }

  /** Gives each connection's gathered packets to the member's handler, as one batch each. */
  private handOver(): void {
    const gathered = [...this.gathering.values()];
    this.gathering.clear();
    for (const { entries, settle } of gathered) {
      let applied: Promise<void>;
      try {
        applied = this.loop.handler(entries, NO_ACK, NO_ACK);
      } catch (err) {
        applied = Promise.reject(err);
      }
      settle(applied);
    }
  }

  /** Resolves once every packet taken is applied (or failed). */
  settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
}

/** One connection's packets taken in one turn of the event loop (ServedLoop.apply). */
class Gathered {
  readonly entries: ShardEntry[] = [];
  settle!: (applied: Promise<void>) => void;
  readonly applied = new Promise<void>((resolve) => (this.settle = resolve));
}

/** Handle of one read loop's shards, for its reports and its end (OwnMemberIntake.serve). */
export interface ServedShards {
  /** Everything up to `lastId` in `shard`'s inbox has been handled by this loop (onHandled). */
  handled(shard: number, lastId: string): void;
  /** Takes nothing more in process for these shards. */
  stop(): void;
  /** Resolves once what was taken is settled. */
  settled(): Promise<void>;
}

/** Where a socket packet went (OwnMemberIntake's `counted`). */
export type IntakePath = "in-process" | "inbox" | "fallback";

/** Writes a packet to a shard inbox, resolving with its entry id. */
export type InboxWrite = (shard: number, packet: ShardPacket) => Promise<string>;

export class OwnMemberIntake {
  /** The read loop of each shard read now. */
  private readonly served = new Map<number, ServedLoop>();
  /** The edge's writes to each shard inbox that are not stored yet (or not sent yet). */
  private readonly inboxWritesPending = new Map<number, number>();
  /** The entry id of the edge's last write to each shard inbox. */
  private readonly lastInboxWrite = new Map<number, string>();
  /**
   * Per connection, while any of its packets is not placed yet: resolves once the last one is
   * (applied in process, or sent to the inbox), so a later write to the inbox follows it.
   */
  private readonly placed = new Map<string, Promise<void>>();
  /** Serials of in-process ids start at random, so a restarted process's ids differ. */
  private nextSerial = randomInt(2 ** 47);

  constructor(
    private readonly writeInbox: InboxWrite,
    /**
     * Told of each socket packet: handed over in process, or through the inbox; and of each
     * one handed over that the member could not apply, written to the inbox then.
     */
    private readonly counted?: (path: IntakePath) => void,
  ) {}

  /** A read loop of this member reads `shards` from now on. */
  serve(shards: readonly number[], loop: IntakeLoop): ServedShards {
    const served = new ServedLoop(loop);
    for (const shard of shards) this.served.set(shard, served);
    return {
      handled: (shard, lastId) => served.handled(shard, lastId),
      stop: () => {
        served.stopping = true;
        for (const shard of shards)
          if (this.served.get(shard) === served) this.served.delete(shard);
      },
      settled: () => served.settled(),
    };
  }

  /** The member gives `shard` up: nothing more in process for it (its loop stops too). */
  stopped(shard: number): void {
    this.served.delete(shard);
  }

  /** Whether a packet for `shard` may be handed over in process now. */
  allows(shard: number): boolean {
    const served = this.served.get(shard);
    if (!served?.readable() || (this.inboxWritesPending.get(shard) ?? 0) > 0) return false;
    const written = this.lastInboxWrite.get(shard);
    if (written === undefined) return true;
    const handled = served.handledUpTo.get(shard);
    return handled !== undefined && compareEntryIds(handled, written) >= 0;
  }

  /**
   * Writes one of the edge's socket packets: to the member in process when `shard` allows it
   * (resolving once applied, or once written to the inbox when it could not be), else to the
   * inbox behind the connection's earlier packets. Resolves with an entry id (in-process:
   * "0-<serial>"); rejects only if its inbox write failed.
   */
  write(shard: number, packet: SocketPacket): Promise<string> {
    if (!this.allows(shard)) {
      this.counted?.("inbox");
      return this.toInbox(shard, packet);
    }
    this.counted?.("in-process");
    const served = this.served.get(shard) as ServedLoop;
    const id = `0-${this.nextSerial++}`;
    const entry: ShardEntry = { id, shard, packet, inProcess: true };
    const before = this.placed.get(packet.c);
    let placed!: () => void;
    this.place(packet.c, new Promise<void>((resolve) => (placed = resolve)));
    return served.apply(entry).then(
      () => {
        placed();
        return id;
      },
      // Not applied here: for the next owner, with the origins it had (packets.ts `i`), after
      // the connection's earlier packets (which may be going the same way). Pending from now:
      // nothing of the shard goes in process until it is handled.
      () => {
        this.counted?.("fallback");
        return this.viaInbox(shard, async () => {
          try {
            if (before) await before;
            return this.writeInbox(shard, { ...packet, i: id });
          } finally {
            placed(); // sent: the Redis connection keeps the order of what is sent on it
          }
        });
      },
    );
  }

  /** Any other write of the edge to `shard`'s inbox: later packets stay behind it. */
  toInbox(shard: number, packet: ShardPacket): Promise<string> {
    const before = "c" in packet ? this.placed.get(packet.c) : undefined;
    let sent!: () => void;
    const isSent = new Promise<void>((resolve) => (sent = resolve));
    if ("c" in packet) this.place(packet.c, isSent);
    return this.viaInbox(shard, async () => {
      try {
        if (before) await before;
        // Sent now: the Redis connection keeps the order of what is sent on it.
        return this.writeInbox(shard, packet);
      } finally {
        sent();
      }
    });
  }

  /** `connId`'s packets so far are placed once `done` resolves (it never rejects). */
  private place(connId: string, done: Promise<void>): void {
    this.placed.set(connId, done);
    void done.then(() => {
      if (this.placed.get(connId) === done) this.placed.delete(connId);
    });
  }

  /** Tracks a write to `shard`'s inbox: nothing skips it until it is handled. */
  private async viaInbox(shard: number, write: () => Promise<string>): Promise<string> {
    this.inboxWritesPending.set(shard, (this.inboxWritesPending.get(shard) ?? 0) + 1);
    try {
      const id = await write();
      const before = this.lastInboxWrite.get(shard);
      if (before === undefined || compareEntryIds(id, before) > 0)
        this.lastInboxWrite.set(shard, id);
      return id;
    } finally {
      const left = (this.inboxWritesPending.get(shard) ?? 1) - 1;
      if (left > 0) this.inboxWritesPending.set(shard, left);
      else this.inboxWritesPending.delete(shard);
    }
  }
}
