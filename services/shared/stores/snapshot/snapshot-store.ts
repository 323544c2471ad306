// Connection snapshots: the XMPP state of each live connection, grouped by shard, so that
// the member that takes a shard over (or a restarted one) continues every connection.

export interface SnapshotStore {
  /** Stores (replaces) the snapshot of `connId` in `shard`. */
  save(shard: number, connId: string, snapshot: string): Promise<void>;
  /**
   * Stores (replaces) several snapshots of one shard in one step: a batch saves every
   * connection it touched with one command, not one per connection.
   */
  saveMany(shard: number, snapshots: ReadonlyMap<string, string>): Promise<void>;
  /** Forgets a connection. */
  delete(shard: number, connId: string): Promise<void>;
  /** Every snapshot of a shard: connId → snapshot. */
  loadShard(shard: number): Promise<Map<string, string>>;
}
