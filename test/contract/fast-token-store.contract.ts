// Contract of FastTokenStore (services/shared/stores/fast-token/fast-token-store.ts): the two
// slots of XEP-0484's implementation notes, expiry, replay counts and invalidation.
import assert from "node:assert/strict";
import type {
  FastToken,
  FastTokenStore,
} from "../../services/shared/stores/fast-token/fast-token-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

const ALICE = "alice@example.com";
const AGENT = "d4565fa7-4d72-4749-b3d3-740edbf87770";
const MECHANISM = "HT-SHA-256-NONE";

export function fastTokenStoreContract(name: string, factory: StoreFactory<FastTokenStore>): void {
  describe(`${name} FastTokenStore`, () => {
    const store = storePerTest(factory);
    // Real time, read as each test starts, so Redis key expiry (wall clock) and the tokens agree.
    let now = Date.now();
    beforeEach(() => {
      now = Date.now();
    });
    const token = (hash: string, lifetimeMs = 60_000): FastToken => ({
      hash,
      mechanism: MECHANISM,
      expiresAtMs: now + lifetimeMs,
      count: 0,
    });

    it("has no tokens for a pair that never asked", async () => {
      assert.deepEqual(await store().get(ALICE, AGENT), []);
      assert.equal(await store().use(ALICE, AGENT, "aGFzaA==", now), false);
      assert.equal(await store().invalidate(ALICE, AGENT, "aGFzaA=="), false);
    });

    it("keeps an issued token in the fresh slot, and a used one in the current slot", async () => {
      await store().issue(ALICE, AGENT, token("h1"));
      assert.deepEqual(await store().get(ALICE, AGENT), [token("h1")]);
      assert.equal(await store().use(ALICE, AGENT, "h1", now), true);
      assert.deepEqual(await store().get(ALICE, AGENT), [token("h1")]);
      // Used again: a token serves until it expires or is replaced.
      assert.equal(await store().use(ALICE, AGENT, "h1", now), true);
    });

    it("keeps the current token until the newer one is used, then refuses it", async () => {
      await store().issue(ALICE, AGENT, token("old"));
      assert.equal(await store().use(ALICE, AGENT, "old", now), true);
      await store().issue(ALICE, AGENT, token("new", 120_000));
      assert.deepEqual(await store().get(ALICE, AGENT), [token("new", 120_000), token("old")]);
      // The client may not have received the new one: the old one still works.
      assert.equal(await store().use(ALICE, AGENT, "old", now), true);
      assert.equal(await store().use(ALICE, AGENT, "new", now), true);
      assert.equal(await store().use(ALICE, AGENT, "old", now), false);
      assert.deepEqual(await store().get(ALICE, AGENT), [token("new", 120_000)]);
    });

    it("replaces a fresh token never used with a newer one", async () => {
      await store().issue(ALICE, AGENT, token("first"));
      await store().issue(ALICE, AGENT, token("second"));
      assert.equal(await store().use(ALICE, AGENT, "first", now), false);
      assert.equal(await store().use(ALICE, AGENT, "second", now), true);
    });

    it("refuses a token at and after its expiry", async () => {
      await store().issue(ALICE, AGENT, token("h1", 10_000));
      assert.equal(await store().use(ALICE, AGENT, "h1", now + 10_000), false);
      assert.equal(await store().use(ALICE, AGENT, "h1", now + 9_999), true);
      assert.equal(await store().use(ALICE, AGENT, "h1", now + 20_000), false);
    });

    it("accepts each count once and only above the highest accepted (replays are refused)", async () => {
      await store().issue(ALICE, AGENT, token("h1"));
      assert.equal(await store().use(ALICE, AGENT, "h1", now, 5), true);
      assert.equal(await store().use(ALICE, AGENT, "h1", now, 5), false);
      assert.equal(await store().use(ALICE, AGENT, "h1", now, 4), false);
      assert.equal(await store().use(ALICE, AGENT, "h1", now, 6), true);
      assert.equal((await store().get(ALICE, AGENT))[0]?.count, 6);
      // Without a count (no TLS 0-RTT) the counter is left alone.
      assert.equal(await store().use(ALICE, AGENT, "h1", now), true);
      assert.equal(await store().use(ALICE, AGENT, "h1", now, 6), false);
    });

    it("lets only one of eight concurrent uses with the same count through", async () => {
      await store().issue(ALICE, AGENT, token("h1"));
      const results = await Promise.all(
        Array.from({ length: 8 }, () => store().use(ALICE, AGENT, "h1", now, 1)),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });

    it("forgets an invalidated token, in either slot", async () => {
      await store().issue(ALICE, AGENT, token("cur"));
      await store().use(ALICE, AGENT, "cur", now);
      await store().issue(ALICE, AGENT, token("fresh"));
      assert.equal(await store().invalidate(ALICE, AGENT, "cur"), true);
      assert.equal(await store().use(ALICE, AGENT, "cur", now), false);
      assert.equal(await store().invalidate(ALICE, AGENT, "fresh"), true);
      assert.equal(await store().use(ALICE, AGENT, "fresh", now), false);
      assert.equal(await store().invalidate(ALICE, AGENT, "fresh"), false);
      assert.deepEqual(await store().get(ALICE, AGENT), []);
    });

    it("keeps each user's and each client installation's tokens apart", async () => {
      await store().issue(ALICE, AGENT, token("h1"));
      assert.equal(await store().use("bob@example.com", AGENT, "h1", now), false);
      assert.equal(await store().use(ALICE, "another-agent", "h1", now), false);
      assert.deepEqual(await store().get(ALICE, "another-agent"), []);
      assert.equal(await store().use(ALICE, AGENT, "h1", now), true);
    });
  });
}
