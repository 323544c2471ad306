// Contract of AccountStore (services/shared/stores/account/account-store.ts).
import assert from "node:assert/strict";
import type { Account, AccountStore } from "../../services/shared/stores/account/account-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

function account(tag: string, createdAt = 1_700_000_000_000): Account {
  const credential = (mechanism: string) => ({
    salt: `salt-${mechanism}-${tag}`,
    iterations: 4096,
    storedKey: `stored-${mechanism}-${tag}`,
    serverKey: `server-${mechanism}-${tag}`,
  });
  return {
    scram: { "SCRAM-SHA-1": credential("sha1"), "SCRAM-SHA-256": credential("sha256") },
    createdAt,
  };
}

export function accountStoreContract(name: string, factory: StoreFactory<AccountStore>): void {
  describe(`${name} AccountStore`, () => {
    const store = storePerTest(factory);

    it("returns undefined for an unknown user", async () => {
      assert.equal(await store().get("nobody@example.com"), undefined);
    });

    it("creates an account that get returns unchanged", async () => {
      assert.equal(await store().create("alice@example.com", account("a")), true);
      assert.deepEqual(await store().get("alice@example.com"), account("a"));
    });

    it("refuses to create over an existing account and keeps the first", async () => {
      await store().create("alice@example.com", account("first"));
      assert.equal(await store().create("alice@example.com", account("second")), false);
      assert.deepEqual(await store().get("alice@example.com"), account("first"));
    });

    it("lets exactly one of several concurrent creates win", async () => {
      const results = await Promise.all(
        ["a", "b", "c", "d", "e"].map((tag) => store().create("alice@example.com", account(tag))),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = ["a", "b", "c", "d", "e"][results.indexOf(true)] ?? "";
      assert.deepEqual(await store().get("alice@example.com"), account(winner));
    });

    it("keeps users apart", async () => {
      await store().create("alice@example.com", account("a"));
      assert.equal(await store().get("bob@example.com"), undefined);
      assert.equal(await store().create("bob@example.com", account("b")), true);
      assert.deepEqual(await store().get("alice@example.com"), account("a"));
    });

    it("updates an existing account", async () => {
      await store().create("alice@example.com", account("old"));
      assert.equal(await store().update("alice@example.com", account("new", 5)), true);
      assert.deepEqual(await store().get("alice@example.com"), account("new", 5));
    });

    it("does not create an account on update", async () => {
      assert.equal(await store().update("alice@example.com", account("a")), false);
      assert.equal(await store().get("alice@example.com"), undefined);
    });

    it("deletes an account once", async () => {
      await store().create("alice@example.com", account("a"));
      assert.equal(await store().delete("alice@example.com"), true);
      assert.equal(await store().get("alice@example.com"), undefined);
      assert.equal(await store().delete("alice@example.com"), false);
      assert.equal(await store().create("alice@example.com", account("again")), true);
    });

    it("keeps one stand-in key of 32 bytes, the same on every call", async () => {
      const first = Buffer.from(await store().standInKey());
      assert.equal(first.length, 32);
      assert.deepEqual(Buffer.from(await store().standInKey()), first);
      // Accounts coming and going do not change it.
      await store().create("alice@example.com", account("a"));
      await store().delete("alice@example.com");
      assert.deepEqual(Buffer.from(await store().standInKey()), first);
    });

    it("gives concurrent first callers the same stand-in key", async () => {
      const keys = await Promise.all(
        Array.from({ length: 8 }, async () => Buffer.from(await store().standInKey())),
      );
      for (const key of keys) assert.deepEqual(key, keys[0]);
    });

    it("copies accounts in and out", async () => {
      const given = account("a");
      await store().create("alice@example.com", given);
      given.scram["SCRAM-SHA-256"].storedKey = "changed after create";
      const read = await store().get("alice@example.com");
      assert.ok(read);
      read.scram["SCRAM-SHA-256"].storedKey = "changed after get";
      read.createdAt = 0;
      assert.deepEqual(await store().get("alice@example.com"), account("a"));
    });
  });
}
