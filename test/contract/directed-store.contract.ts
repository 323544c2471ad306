// Contract of DirectedPresenceStore (services/shared/stores/directed/directed-store.ts).
import assert from "node:assert/strict";
import type { DirectedPresenceStore } from "../../services/shared/stores/directed/directed-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

const CONN = "e1.3.a";
const SHARD = 3;
const MAX = 100;
const MAX_BYTES = 100_000;

export function directedStoreContract(
  name: string,
  factory: StoreFactory<DirectedPresenceStore>,
): void {
  describe(`${name} DirectedPresenceStore`, () => {
    const store = storePerTest(factory);
    const add = (jid: string, max = MAX, maxBytes = MAX_BYTES, connId = CONN) =>
      store().add(SHARD, connId, jid, max, maxBytes);
    const list = async (connId = CONN) => (await store().list(SHARD, connId)).sort();

    it("lists nothing for a connection that sent no directed presence", async () => {
      assert.deepEqual(await list(), []);
    });

    it("adds each recipient once", async () => {
      assert.equal(await add("bob@example.com"), "added");
      assert.equal(await add("carol@example.com/pc"), "added");
      assert.equal(await add("bob@example.com"), "present");
      assert.deepEqual(await list(), ["bob@example.com", "carol@example.com/pc"]);
    });

    it("refuses a recipient past max recipients, changing nothing", async () => {
      assert.equal(await add("a@example.com", 2), "added");
      assert.equal(await add("b@example.com", 2), "added");
      assert.equal(await add("c@example.com", 2), "full");
      assert.equal(await add("a@example.com", 2), "present", "one already there is no new one");
      assert.deepEqual(await list(), ["a@example.com", "b@example.com"]);
    });

    it("refuses a recipient past max bytes of JIDs (UTF-8), changing nothing", async () => {
      const jid = (n: string) => `${n}é@example.com`; // 15 bytes, 14 characters
      assert.equal(await add(jid("a"), MAX, 30), "added");
      assert.equal(await add(jid("b"), MAX, 30), "added");
      assert.equal(await add(jid("c"), MAX, 44), "full");
      assert.equal(await add("d@example.com", MAX, 43), "added");
      assert.deepEqual(await list(), [jid("a"), jid("b"), "d@example.com"]);
    });

    it("removes the recipients named, ignoring absent ones, and frees their room", async () => {
      await add("a@example.com", 2);
      await add("b@example.com", 2);
      await store().remove(SHARD, CONN, ["a@example.com", "z@example.com"]);
      assert.deepEqual(await list(), ["b@example.com"]);
      assert.equal(await add("c@example.com", 2), "added");
      await store().remove(SHARD, CONN, ["b@example.com", "c@example.com"]);
      assert.deepEqual(await list(), []);
      await store().remove(SHARD, CONN, []);
    });

    it("keeps connections apart", async () => {
      await add("a@example.com", 1);
      assert.equal(await add("b@example.com", 1, MAX_BYTES, "e1.3.b"), "added");
      assert.deepEqual(await list("e1.3.b"), ["b@example.com"]);
      assert.deepEqual(await store().list(SHARD + 1, CONN), []);
    });

    it("never overshoots the bounds under concurrent adds", async () => {
      const jids = ["a", "b", "c", "d", "e", "f", "g"].map((c) => `${c}@example.com`);
      const results = await Promise.all(jids.map((jid) => add(jid, 3)));
      assert.equal(results.filter((r) => r === "added").length, 3);
      assert.equal((await list()).length, 3);
    });
  });
}
