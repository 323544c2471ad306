// Contract of SnapshotStore (services/shared/stores/snapshot/snapshot-store.ts).
import assert from "node:assert/strict";
import type { SnapshotStore } from "../../services/shared/stores/snapshot/snapshot-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

export function snapshotStoreContract(name: string, factory: StoreFactory<SnapshotStore>): void {
  describe(`${name} SnapshotStore`, () => {
    const store = storePerTest(factory);

    it("loads an empty map for a shard with no snapshots", async () => {
      assert.deepEqual(await store().loadShard(3), new Map());
    });

    it("saves several snapshots of a shard at once, replacing older ones", async () => {
      await store().save(2, "conn-1", "old");
      await store().saveMany(
        2,
        new Map([
          ["conn-1", "new"],
          ["conn-2", "two"],
        ]),
      );
      await store().saveMany(2, new Map());
      assert.deepEqual(
        await store().loadShard(2),
        new Map([
          ["conn-1", "new"],
          ["conn-2", "two"],
        ]),
      );
    });

    it("saves, replaces and loads snapshots by connId", async () => {
      await store().save(3, "conn-1", '{"v":1}');
      await store().save(3, "conn-2", '{"v":2}');
      await store().save(3, "conn-1", '{"v":3}');
      assert.deepEqual(
        await store().loadShard(3),
        new Map([
          ["conn-1", '{"v":3}'],
          ["conn-2", '{"v":2}'],
        ]),
      );
    });

    it("deletes one connection's snapshot", async () => {
      await store().save(3, "conn-1", "a");
      await store().save(3, "conn-2", "b");
      await store().delete(3, "conn-1");
      assert.deepEqual(await store().loadShard(3), new Map([["conn-2", "b"]]));
    });

    it("accepts deleting a snapshot that does not exist", async () => {
      await store().delete(3, "conn-1");
      assert.deepEqual(await store().loadShard(3), new Map());
    });

    it("keeps shards apart", async () => {
      await store().save(0, "conn-1", "in zero");
      await store().save(1, "conn-1", "in one");
      await store().delete(1, "conn-1");
      assert.deepEqual(await store().loadShard(0), new Map([["conn-1", "in zero"]]));
      assert.deepEqual(await store().loadShard(1), new Map());
    });

    it("copies the loaded map out", async () => {
      await store().save(3, "conn-1", "a");
      (await store().loadShard(3)).set("conn-2", "b");
      assert.deepEqual(await store().loadShard(3), new Map([["conn-1", "a"]]));
    });
  });
}
