// When a node's session member may hand a packet to its own process's edge in process
// (InProcessEdgeBus with an order) although other members write to that edge's inbox too. A
// packet handed over is on its socket at once, so it must not overtake one for the same
// connection still unread in the inbox (RFC 6120 §10.1, RFC 6121 §8). Such a packet can be:
// - the previous owner's, written before this member took the connection's shard over: every
//   shard is barred until the edge has read past its inbox's end as it was once the lease was
//   ours (started());
// - this member's own, sent through the inbox (before its shard's bar lifted, or because the
//   edge refused it in process): its connection is barred until the edge has read past it.
// - another member's `rename` of a connection that asked to resume a session of that
//   member's shard (XEP-0198 across nodes, stream-management.ts), and what follows it: such a
//   connection is barred from the moment its resume request is written until the edge reads
//   a rename of it (then it has a new id), or its socket is gone.
// Nobody else writes to a node's connections of a served shard: node members offer no two-hop
// direct writes to their connections (their bindings name no edge), and routes of other
// members go to the shard's inbox, which this member reads. Ids are entry ids of the one edge
// inbox, compared as such, so no clocks are involved.
//
// Memory: an entry per connection with writes of this member not read yet or a resume under
// way, dropped once read, renamed, or its socket reported gone (forget()).
import { parseConnId } from "../conn-id.js";
import { compareEntryIds } from "./packets.js";

function shardOf(connId: string): number | undefined {
  try {
    return parseConnId(connId).shard;
  } catch {
    return undefined;
  }
}

interface OwnWrites {
  /** Written, entry id not known yet. */
  inFlight: number;
  /** The last entry id of this member's writes for the connection. */
  lastId: string;
  /** A write failed: it may be stored all the same, with an id nobody knows. */
  unknown: boolean;
  /** Its resume request went out: another member may write its rename to the inbox. */
  resuming: boolean;
  /** Its socket is gone: dropped once its writes under way are answered. */
  gone: boolean;
}

export class OwnEdgeOrder {
  /** Served shards, with the edge inbox's end once the lease was ours. */
  private readonly marks = new Map<number, string>();
  /** This member's writes through the edge's inbox not yet read, per connection. */
  private readonly unread = new Map<string, OwnWrites>();
  /** The edge has handled every inbox entry up to this id. */
  private readUpTo = "0-0";

  /** Whether a packet for connection `connId` may be handed to the edge in process now. */
  allows(connId: string): boolean {
    const shard = shardOf(connId);
    if (shard === undefined) return false; // the inbox path answers a malformed id as before
    const mark = this.marks.get(shard);
    if (mark === undefined || compareEntryIds(this.readUpTo, mark) < 0) return false;
    const own = this.unread.get(connId);
    return own === undefined || this.isRead(own);
  }

  /** The member serves `shard` from now on; `end`: the edge inbox's end, read after its lease was taken. */
  started(shard: number, end: string): void {
    this.marks.set(shard, end);
  }

  stopped(shard: number): void {
    this.marks.delete(shard);
  }

  /**
   * Tracks this member's write through the edge's inbox of a packet for `connIds` (`write`
   * resolves with its entry id, or null when the edge has no inbox): packets for those
   * connections are not handed over in process until the edge has read past it.
   */
  async viaInbox(
    connIds: readonly string[],
    write: () => Promise<string | null>,
  ): Promise<string | null> {
    const owns = connIds.map((connId) => this.entry(connId));
    for (const own of owns) own.inFlight++;
    try {
      const id = await write();
      for (const own of owns) {
        // Stream ids only grow: a write that succeeds is past any earlier one that failed.
        own.unknown = false;
        if (id !== null && compareEntryIds(id, own.lastId) > 0) own.lastId = id;
      }
      return id;
    } catch (err) {
      for (const own of owns) own.unknown = true;
      throw err;
    } finally {
      for (const [i, own] of owns.entries()) {
        own.inFlight--;
        if (own.gone && own.inFlight === 0) this.unread.delete(connIds[i]);
      }
    }
  }

  /** Connection `connId` asked another shard's member to resume a session (its rename may come). */
  resuming(connId: string): void {
    this.entry(connId).resuming = true;
  }

  /** The resume was refused: no rename of `connId` comes (the bar of resuming() lifts). */
  resumeRefused(connId: string): void {
    const own = this.unread.get(connId);
    if (own !== undefined) own.resuming = false;
  }

  /**
   * Nothing more for `connId` can be overtaken: the edge read its rename (the socket has a new
   * id) or its socket is gone (whatever is written for it now is given back, in order).
   */
  forget(connId: string): void {
    const own = this.unread.get(connId);
    if (own === undefined) return;
    if (own.inFlight > 0) {
      // A write under way still needs its id; only the other bars go, and the entry with it.
      own.resuming = false;
      own.unknown = false;
      own.gone = true;
    } else this.unread.delete(connId);
  }

  /** The edge handled every entry of its inbox up to `lastId`. */
  read(lastId: string): void {
    if (compareEntryIds(lastId, this.readUpTo) <= 0) return;
    this.readUpTo = lastId;
    for (const [connId, own] of this.unread) if (this.isRead(own)) this.unread.delete(connId);
  }

  /** Connections with writes of this member the edge has not read yet (bounded by those writes). */
  get unreadConnections(): number {
    return this.unread.size;
  }

  private isRead(own: OwnWrites): boolean {
    return (
      own.inFlight === 0 &&
      !own.unknown &&
      !own.resuming &&
      compareEntryIds(this.readUpTo, own.lastId) >= 0
    );
  }

  private entry(connId: string): OwnWrites {
    let own = this.unread.get(connId);
    if (own === undefined) {
      own = { inFlight: 0, lastId: "0-0", unknown: false, resuming: false, gone: false };
      this.unread.set(connId, own);
    }
    return own;
  }
}
