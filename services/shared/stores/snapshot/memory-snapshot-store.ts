// SnapshotStore in process memory, for tests and single-process demo mode.
import type { SnapshotStore } from "./snapshot-store.js";

export class MemorySnapshotStore implements SnapshotStore {
  /** shard → connId → snapshot */
  private readonly shards = new Map<number, Map<string, string>>();

  async save(shard: number, connId: string, snapshot: string): Promise<void> {
    this.put(shard, connId, snapshot);
  }

  private put(shard: number, connId: string, snapshot: string): void {
    let snapshots = this.shards.get(shard);
    if (!snapshots) {
      snapshots = new Map();
      this.shards.set(shard, snapshots);
    }
    snapshots.set(connId, snapshot);
  }

  async saveMany(shard: number, snapshots: ReadonlyMap<string, string>): Promise<void> {
    for (const [connId, snapshot] of snapshots) await this.save(shard, connId, snapshot);
  }

  async delete(shard: number, connId: string): Promise<void> {
    this.shards.get(shard)?.delete(connId);
  }

  /** Saves and deletes in one synchronous step (the in-process fenced writes land here). */
  write(shard: number, save: ReadonlyMap<string, string>, remove: readonly string[]): void {
    for (const [connId, snapshot] of save) this.put(shard, connId, snapshot);
    for (const connId of remove) this.shards.get(shard)?.delete(connId);
  }

  async loadShard(shard: number): Promise<Map<string, string>> {
    return new Map(this.shards.get(shard));
  }
}
