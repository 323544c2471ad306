// Which entries of a node's served shard inboxes its own member wrote (InProcessEdgeBus): a
// batch holding another member's packets may follow that member's two-hop writes to the
// node's edge and bars in-process writes for a moment (own-edge-order.ts), while the member's
// own routes, which local delivery makes whenever a shard's inbox is not handled up to its
// last route, must not: they would bar the node all the time.
//
// An entry read before its write's answer came is not known as ours yet and counts as
// another member's (a needless bar, never a missed one); its id, known later, is dropped with
// the next batch read from that shard. Memory: the ids of writes not read yet, per served shard.
import { compareEntryIds } from "./packets.js";

export class OwnShardWrites {
  private readonly written = new Map<number, Set<string>>();

  /** This member wrote entry `id` into `shard`'s inbox, a shard it serves. */
  wrote(shard: number, id: string): void {
    let ids = this.written.get(shard);
    if (ids === undefined) this.written.set(shard, (ids = new Set()));
    ids.add(id);
  }

  /**
   * Whether every entry of a batch read from `shard` up to `lastId` with these `ids` is ours;
   * forgets every id up to `lastId` (read now, or read before its write answered).
   */
  allOwn(shard: number, ids: readonly string[], lastId: string): boolean {
    const own = this.written.get(shard);
    if (own === undefined) return ids.length === 0;
    const all = ids.every((id) => own.has(id));
    for (const id of own) if (compareEntryIds(id, lastId) <= 0) own.delete(id);
    if (own.size === 0) this.written.delete(shard);
    return all;
  }

  /** The member no longer serves `shard`: its writes there will not be read here. */
  stopped(shard: number): void {
    this.written.delete(shard);
  }
}
