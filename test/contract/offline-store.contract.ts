// Contract of OfflineStore (services/shared/stores/offline/offline-store.ts).
import assert from "node:assert/strict";
import type {
  OfflineLimits,
  OfflineStore,
} from "../../services/shared/stores/offline/offline-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

const USER = "alice@example.com";
const MAX_STANZAS = 100;
const MAX_BYTES = 1_000_000;
const MALLORY = "mallory@example.com";
const BOB = "bob@example.com";

function message(n: number): string {
  return `<message to='alice@example.com' id='m${n}'><body>${n}</body></message>`;
}

/** UTF-8 length, the unit of maxBytes. */
function bytes(...stanzas: string[]): number {
  return stanzas.reduce((sum, stanza) => sum + Buffer.byteLength(stanza, "utf8"), 0);
}

export function offlineStoreContract(name: string, factory: StoreFactory<OfflineStore>): void {
  describe(`${name} OfflineStore`, () => {
    const store = storePerTest(factory);

    /** A stanza from no particular sender (no sender bound applies); true if stored. */
    const push = async (user: string, stanza: string, maxMessages: number, maxBytes: number) =>
      (await store().pushFrom(user, "", stanza, { maxMessages, maxBytes, maxPerSender: 1 })) ===
      "stored";

    /** push with a bound on one dimension only. */
    const pushCount = (stanza: string, maxStanzas: number, user = USER) =>
      push(user, stanza, maxStanzas, MAX_BYTES);
    const pushBytes = (stanza: string, maxBytes: number, user = USER) =>
      push(user, stanza, MAX_STANZAS, maxBytes);

    it("starts empty", async () => {
      assert.equal(await store().count(USER), 0);
      assert.deepEqual(await store().takeAll(USER), []);
    });

    it("takes everything oldest first, then nothing", async () => {
      for (const n of [1, 2, 3]) assert.equal(await pushCount(message(n), MAX_STANZAS), true);
      assert.equal(await store().count(USER), 3);
      assert.deepEqual(await store().takeAll(USER), [message(1), message(2), message(3)]);
      assert.deepEqual(await store().takeAll(USER), []);
      assert.equal(await store().count(USER), 0);
    });

    it("keeps the stanza text exactly", async () => {
      const stanza = '<message><body>héllo 👋 &amp; "quotes"\n</body></message>';
      await pushCount(stanza, MAX_STANZAS);
      assert.deepEqual(await store().takeAll(USER), [stanza]);
    });

    describe("message bound", () => {
      it("refuses a push once max stanzas are queued", async () => {
        assert.equal(await pushCount(message(1), 2), true);
        assert.equal(await pushCount(message(2), 2), true);
        assert.equal(await pushCount(message(3), 2), false);
        assert.equal(await store().count(USER), 2);
        assert.deepEqual(await store().takeAll(USER), [message(1), message(2)]);
      });

      it("refuses every push when max is 0", async () => {
        assert.equal(await pushCount(message(1), 0), false);
        assert.equal(await store().count(USER), 0);
      });

      it("accepts pushes again after takeAll", async () => {
        await pushCount(message(1), 1);
        await store().takeAll(USER);
        assert.equal(await pushCount(message(2), 1), true);
        assert.deepEqual(await store().takeAll(USER), [message(2)]);
      });

      it("never overshoots the bound under concurrent pushes", async () => {
        const max = 3;
        const pushed = await Promise.all(
          [1, 2, 3, 4, 5, 6, 7, 8].map((n) => pushCount(message(n), max)),
        );
        assert.equal(pushed.filter(Boolean).length, max);
        assert.equal(await store().count(USER), max);
      });
    });

    describe("byte bound", () => {
      it("accepts a queue of exactly max bytes and refuses one byte more", async () => {
        const max = bytes(message(1), message(2));
        assert.equal(await pushBytes(message(1), max), true);
        assert.equal(await pushBytes(message(2), max), true);
        assert.equal(await pushBytes("<message/>", max), false);
        assert.equal(await store().count(USER), 2);
        assert.deepEqual(await store().takeAll(USER), [message(1), message(2)]);
      });

      it("counts bytes in UTF-8, not characters", async () => {
        const stanza = "<message><body>héllo 👋</body></message>"; // é: 2 bytes, 👋: 4
        assert.equal(await pushBytes(stanza, stanza.length), false);
        assert.equal(await pushBytes(stanza, bytes(stanza) - 1), false);
        assert.equal(await pushBytes(stanza, bytes(stanza)), true);
        assert.deepEqual(await store().takeAll(USER), [stanza]);
      });

      it("refuses a stanza larger than max bytes even into an empty queue", async () => {
        assert.equal(await pushBytes(message(1), bytes(message(1)) - 1), false);
        assert.equal(await store().count(USER), 0);
      });

      it("lets a smaller stanza in after a larger one was refused", async () => {
        const small = message(1);
        const large = `<message><body>${"x".repeat(100)}</body></message>`;
        const max = bytes(small, small);
        assert.equal(await pushBytes(small, max), true);
        assert.equal(await pushBytes(large, max), false);
        assert.equal(await pushBytes(small, max), true);
        assert.equal(await store().count(USER), 2);
      });

      it("does not charge bytes for a push refused by the message bound", async () => {
        assert.equal(await push(USER, message(1), 1, bytes(message(1), message(2))), true);
        assert.equal(await push(USER, message(2), 1, bytes(message(1), message(2))), false);
        assert.equal(await push(USER, message(2), 2, bytes(message(1), message(2))), true);
        assert.deepEqual(await store().takeAll(USER), [message(1), message(2)]);
      });

      it("releases the bytes on takeAll", async () => {
        const max = bytes(message(1));
        assert.equal(await pushBytes(message(1), max), true);
        assert.equal(await pushBytes(message(2), max), false);
        await store().takeAll(USER);
        assert.equal(await pushBytes(message(2), max), true);
        assert.deepEqual(await store().takeAll(USER), [message(2)]);
      });

      it("releases the bytes on deleteUser", async () => {
        const max = bytes(message(1));
        assert.equal(await pushBytes(message(1), max), true);
        await store().deleteUser(USER);
        assert.equal(await pushBytes(message(2), max), true);
        assert.deepEqual(await store().takeAll(USER), [message(2)]);
      });

      it("never overshoots the bound under concurrent pushes", async () => {
        const max = bytes(message(1), message(2), message(3));
        const pushed = await Promise.all(
          [1, 2, 3, 4, 5, 6, 7, 8].map((n) => pushBytes(message(n), max)),
        );
        assert.equal(pushed.filter(Boolean).length, 3, "all messages are the same size");
        assert.equal(await store().count(USER), 3);
      });

      it("counts each user's bytes apart", async () => {
        const max = bytes(message(1));
        assert.equal(await pushBytes(message(1), max), true);
        assert.equal(await pushBytes(message(2), max, "bob@example.com"), true);
        assert.equal(await pushBytes(message(3), max), false);
      });
    });

    describe("sender bound", () => {
      const limits = (maxPerSender: number, maxMessages = MAX_STANZAS): OfflineLimits => ({
        maxMessages,
        maxBytes: MAX_BYTES,
        maxPerSender,
      });
      const pushFrom = (sender: string, n: number, maxPerSender: number, maxMessages?: number) =>
        store().pushFrom(USER, sender, message(n), limits(maxPerSender, maxMessages));

      it("refuses a sender's push once it has max per sender queued, not others'", async () => {
        assert.equal(await pushFrom(MALLORY, 1, 2), "stored");
        assert.equal(await pushFrom(MALLORY, 2, 2), "stored");
        assert.equal(await pushFrom(MALLORY, 3, 2), "sender-full");
        assert.equal(await pushFrom(BOB, 4, 2), "stored");
        assert.equal(await push(USER, message(5), MAX_STANZAS, MAX_BYTES), true);
        assert.deepEqual(await store().peek(USER), [1, 2, 4, 5].map(message));
      });

      it("checks the queue's bounds first", async () => {
        assert.equal(await pushFrom(MALLORY, 1, 1, 1), "stored");
        assert.equal(await pushFrom(MALLORY, 2, 1, 1), "full");
        assert.equal(await pushFrom(BOB, 3, 1, 1), "full");
      });

      it("counts no sender bound for a push without a sender", async () => {
        for (const n of [1, 2, 3])
          assert.equal(await store().pushFrom(USER, "", message(n), limits(1)), "stored");
        assert.equal(await pushFrom(MALLORY, 4, 1), "stored");
      });

      it("releases a sender's count as its stanzas are removed or taken", async () => {
        await pushFrom(BOB, 1, 2);
        await pushFrom(MALLORY, 2, 2);
        await pushFrom(MALLORY, 3, 2);
        await pushFrom(BOB, 4, 2);
        assert.equal(await pushFrom(MALLORY, 5, 2), "sender-full");
        // Removing bob's and one of mallory's frees one place for mallory only.
        assert.equal(await store().removeDelivered(USER, [message(1), message(2)]), 2);
        assert.equal(await pushFrom(MALLORY, 5, 2), "stored");
        assert.equal(await pushFrom(MALLORY, 6, 2), "sender-full");
        assert.deepEqual(await store().takeAll(USER), [3, 4, 5].map(message));
        assert.equal(await pushFrom(MALLORY, 7, 2), "stored");
        assert.equal(await pushFrom(MALLORY, 8, 2), "stored");
        await store().deleteUser(USER);
        assert.equal(await pushFrom(MALLORY, 9, 2), "stored");
      });

      it("releases the counts when delivery empties the queue", async () => {
        await pushFrom(MALLORY, 1, 1);
        assert.equal(await store().removeDelivered(USER, [message(1)]), 1);
        assert.equal(await pushFrom(MALLORY, 2, 1), "stored");
      });

      it("counts each recipient's queue apart", async () => {
        await pushFrom(MALLORY, 1, 1);
        const toBob = await store().pushFrom(BOB, MALLORY, message(2), limits(1));
        assert.equal(toBob, "stored");
      });

      it("never overshoots a sender's bound under concurrent pushes", async () => {
        const results = await Promise.all(
          [1, 2, 3, 4, 5, 6, 7, 8].map((n) => pushFrom(MALLORY, n, 3)),
        );
        assert.equal(results.filter((r) => r === "stored").length, 3);
        assert.equal(await store().count(USER), 3);
      });
    });

    describe("origins (an entry applied twice)", () => {
      const limits = { maxMessages: MAX_STANZAS, maxBytes: MAX_BYTES, maxPerSender: 10 };

      it("stores a repeated origin once, even after the queue was taken", async () => {
        const first = await store().pushFrom(USER, BOB, message(1), limits, "c1|1-0|0");
        // The repeat carries a later delay stamp: the text differs, the origin does not.
        const again = await store().pushFrom(USER, BOB, message(2), limits, "c1|1-0|0");
        assert.deepEqual([first, again], ["stored", "stored"]);
        assert.deepEqual(await store().takeAll(USER), [message(1)]);
        assert.equal(await store().pushFrom(USER, BOB, message(3), limits, "c1|1-0|0"), "stored");
        assert.equal(await store().count(USER), 0);
      });

      it("stores different origins, and pushes without one, each time", async () => {
        await store().pushFrom(USER, BOB, message(1), limits, "c1|1-0|0");
        await store().pushFrom(USER, BOB, message(2), limits, "c1|1-0|1");
        await store().pushFrom(USER, BOB, message(3), limits);
        await store().pushFrom(USER, BOB, message(4), limits);
        // The same origin for another user is another push.
        await store().pushFrom(BOB, MALLORY, message(5), limits, "c1|1-0|0");
        assert.equal(await store().count(USER), 4);
        assert.equal(await store().count(BOB), 1);
      });

      it("forgets a deleted user's origins", async () => {
        await store().pushFrom(USER, BOB, message(1), limits, "c1|1-0|0");
        await store().deleteUser(USER);
        await store().pushFrom(USER, BOB, message(1), limits, "c1|1-0|0");
        assert.equal(await store().count(USER), 1);
      });
    });

    it("peeks without removing, then removes only what was delivered", async () => {
      await push(USER, message(1), 10, 100000);
      await push(USER, message(2), 10, 100000);
      const seen = await store().peek(USER);
      assert.deepEqual(seen, [message(1), message(2)]);
      await push(USER, message(3), 10, 100000); // arrives during delivery
      assert.equal(await store().removeDelivered(USER, seen), 2);
      assert.deepEqual(await store().peek(USER), [message(3)]);
      // A second, concurrent delivery of the same two removes nothing more.
      assert.equal(await store().removeDelivered(USER, seen), 0);
      assert.deepEqual(await store().takeAll(USER), [message(3)]);
    });

    it("releases the bytes of removed stanzas", async () => {
      const big = message(1) + "x".repeat(500);
      await push(USER, big, 10, 1000);
      assert.equal(await push(USER, big, 10, 1000), false);
      assert.equal(await store().removeDelivered(USER, [big]), 1);
      assert.equal(await store().count(USER), 0);
      assert.equal(await push(USER, big, 10, 1000), true);
    });

    it("never returns a stanza twice to concurrent takeAll calls", async () => {
      for (const n of [1, 2, 3, 4]) await pushCount(message(n), MAX_STANZAS);
      const taken = await Promise.all([store().takeAll(USER), store().takeAll(USER)]);
      assert.deepEqual(taken.flat().sort(), [1, 2, 3, 4].map(message).sort());
    });

    it("keeps users apart", async () => {
      await pushCount(message(1), 1);
      assert.equal(await pushCount(message(2), 1, "bob@example.com"), true);
      assert.deepEqual(await store().takeAll("bob@example.com"), [message(2)]);
      assert.equal(await store().count(USER), 1);
    });

    it("deletes one user's queue", async () => {
      await pushCount(message(1), MAX_STANZAS);
      await pushCount(message(2), MAX_STANZAS, "bob@example.com");
      await store().deleteUser(USER);
      assert.equal(await store().count(USER), 0);
      assert.deepEqual(await store().takeAll(USER), []);
      assert.equal(await store().count("bob@example.com"), 1);
    });
  });
}
