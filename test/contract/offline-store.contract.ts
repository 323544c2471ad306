// Contract of OfflineStore (services/shared/stores/offline/offline-store.ts).
import assert from "node:assert/strict";
import type { OfflineStore } from "../../services/shared/stores/offline/offline-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

const USER = "alice@example.com";
const MAX_STANZAS = 100;

function message(n: number): string {
  return `<message to='alice@example.com' id='m${n}'><body>${n}</body></message>`;
}

export function offlineStoreContract(name: string, factory: StoreFactory<OfflineStore>): void {
  describe(`${name} OfflineStore`, () => {
    const store = storePerTest(factory);

    it("starts empty", async () => {
      assert.equal(await store().count(USER), 0);
      assert.deepEqual(await store().takeAll(USER), []);
    });

    it("takes everything oldest first, then nothing", async () => {
      for (const n of [1, 2, 3])
        assert.equal(await store().push(USER, message(n), MAX_STANZAS), true);
      assert.equal(await store().count(USER), 3);
      assert.deepEqual(await store().takeAll(USER), [message(1), message(2), message(3)]);
      assert.deepEqual(await store().takeAll(USER), []);
      assert.equal(await store().count(USER), 0);
    });

    it("keeps the stanza text exactly", async () => {
      const stanza = '<message><body>héllo 👋 &amp; "quotes"\n</body></message>';
      await store().push(USER, stanza, MAX_STANZAS);
      assert.deepEqual(await store().takeAll(USER), [stanza]);
    });

    it("refuses a push once max stanzas are queued", async () => {
      assert.equal(await store().push(USER, message(1), 2), true);
      assert.equal(await store().push(USER, message(2), 2), true);
      assert.equal(await store().push(USER, message(3), 2), false);
      assert.equal(await store().count(USER), 2);
      assert.deepEqual(await store().takeAll(USER), [message(1), message(2)]);
    });

    it("refuses every push when max is 0", async () => {
      assert.equal(await store().push(USER, message(1), 0), false);
      assert.equal(await store().count(USER), 0);
    });

    it("accepts pushes again after takeAll", async () => {
      await store().push(USER, message(1), 1);
      await store().takeAll(USER);
      assert.equal(await store().push(USER, message(2), 1), true);
      assert.deepEqual(await store().takeAll(USER), [message(2)]);
    });

    it("never overshoots the bound under concurrent pushes", async () => {
      const max = 3;
      const pushed = await Promise.all(
        [1, 2, 3, 4, 5, 6, 7, 8].map((n) => store().push(USER, message(n), max)),
      );
      assert.equal(pushed.filter(Boolean).length, max);
      assert.equal(await store().count(USER), max);
    });

    it("never returns a stanza twice to concurrent takeAll calls", async () => {
      for (const n of [1, 2, 3, 4]) await store().push(USER, message(n), MAX_STANZAS);
      const taken = await Promise.all([store().takeAll(USER), store().takeAll(USER)]);
      assert.deepEqual(taken.flat().sort(), [1, 2, 3, 4].map(message).sort());
    });

    it("keeps users apart", async () => {
      await store().push(USER, message(1), 1);
      assert.equal(await store().push("bob@example.com", message(2), 1), true);
      assert.deepEqual(await store().takeAll("bob@example.com"), [message(2)]);
      assert.equal(await store().count(USER), 1);
    });

    it("deletes one user's queue", async () => {
      await store().push(USER, message(1), MAX_STANZAS);
      await store().push("bob@example.com", message(2), MAX_STANZAS);
      await store().deleteUser(USER);
      assert.equal(await store().count(USER), 0);
      assert.deepEqual(await store().takeAll(USER), []);
      assert.equal(await store().count("bob@example.com"), 1);
    });
  });
}
