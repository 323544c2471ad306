// Contract of SmQueueStore (services/shared/stores/sm/sm-queue-store.ts).
import assert from "node:assert/strict";
import type { SmQueueStore } from "../../services/shared/stores/sm/sm-queue-store.js";
import { until } from "../helpers/poll.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

export function smQueueStoreContract(name: string, factory: StoreFactory<SmQueueStore>): void {
  describe(`${name} SmQueueStore`, () => {
    const store = storePerTest(factory);

    it("reads an empty range of a session with nothing stored", async () => {
      assert.deepEqual(await store().range(0, "0.a", 1, 10), []);
      assert.deepEqual(await store().range(0, "0.a", 5, 4), []);
    });

    it("keeps stanzas by number and reads a range in order", async () => {
      for (let seq = 1; seq <= 5; seq++)
        await store().push(1, "1.a", seq, `<message id="${seq}"/>`);
      assert.deepEqual(await store().range(1, "1.a", 2, 4), [
        '<message id="2"/>',
        '<message id="3"/>',
        '<message id="4"/>',
      ]);
    });

    it("stores a number pushed again once (a retried unit of work)", async () => {
      await store().push(1, "1.a", 1, "<iq/>");
      await store().push(1, "1.a", 2, "<message/>");
      await store().push(1, "1.a", 1, "<iq/>");
      await store().push(1, "1.a", 2, "<message/>");
      assert.deepEqual(await store().range(1, "1.a", 1, 100), ["<iq/>", "<message/>"]);
    });

    it("drops acknowledged numbers and keeps the rest", async () => {
      for (let seq = 1; seq <= 4; seq++) await store().push(1, "1.a", seq, `<m${seq}/>`);
      await store().drop(1, "1.a", 1, 2);
      await store().drop(1, "1.a", 3, 2);
      assert.deepEqual(await store().range(1, "1.a", 1, 4), ["<m3/>", "<m4/>"]);
    });

    it("deletes a whole session and keeps sessions and shards apart", async () => {
      await store().push(1, "1.a", 1, "<a/>");
      await store().push(1, "1.b", 1, "<b/>");
      await store().push(2, "1.a", 1, "<c/>");
      await store().delete(1, "1.a");
      assert.deepEqual(await store().range(1, "1.a", 1, 1), []);
      assert.deepEqual(await store().range(1, "1.b", 1, 1), ["<b/>"]);
      assert.deepEqual(await store().range(2, "1.a", 1, 1), ["<c/>"]);
    });

    it("remembers settled connections until their ttl passes, per shard", async () => {
      assert.equal(await store().isSettled(3, "e.3.1"), false);
      await store().markSettled(3, "e.3.1", 150);
      assert.equal(await store().isSettled(3, "e.3.1"), true);
      assert.equal(await store().isSettled(2, "e.3.1"), false);
      await until(async () => !(await store().isSettled(3, "e.3.1")), "the mark expired", 2000);
    });
  });
}
