// Contract of RosterStore (services/shared/stores/roster/roster-store.ts).
import assert from "node:assert/strict";
import type { RosterItem, RosterStore } from "../../services/shared/stores/roster/roster-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

const USER = "alice@example.com";
const SUBSCRIBE_FROM_BOB = "<presence from='bob@example.com' type='subscribe'/>";

function item(jid: string, extra: Partial<RosterItem> = {}): RosterItem {
  return { jid, subscription: "none", groups: [], ...extra };
}

function byJid(a: RosterItem, b: RosterItem): number {
  return a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0;
}

/** Asserts that a version is a decimal integer string and returns its value. */
function versionNumber(version: string): number {
  assert.match(version, /^(0|[1-9][0-9]*)$/);
  return Number(version);
}

export function rosterStoreContract(name: string, factory: StoreFactory<RosterStore>): void {
  describe(`${name} RosterStore`, () => {
    const store = storePerTest(factory);

    describe("items and versions", () => {
      it('returns an empty roster at version "0" for a new user', async () => {
        assert.deepEqual(await store().get(USER), { version: "0", items: [] });
        assert.equal(await store().getItem(USER, "bob@example.com"), undefined);
      });

      it("stores an item with every optional field", async () => {
        const bob = item("bob@example.com", {
          name: "Bob",
          subscription: "to",
          ask: "subscribe",
          approved: true,
          groups: ["Friends", "Work"],
        });
        await store().setItem(USER, bob);
        assert.deepEqual(await store().getItem(USER, "bob@example.com"), bob);
        assert.deepEqual((await store().get(USER)).items, [bob]);
      });

      it("returns increasing decimal versions, the same that get reports", async () => {
        const first = await store().setItem(USER, item("bob@example.com"));
        const second = await store().setItem(USER, item("carol@example.com"));
        const third = await store().setItem(
          USER,
          item("bob@example.com", { subscription: "both" }),
        );
        assert.ok(versionNumber(first) > 0);
        assert.ok(versionNumber(second) > versionNumber(first));
        assert.ok(versionNumber(third) > versionNumber(second));
        assert.equal((await store().get(USER)).version, third);
      });

      it("replaces the item with the same jid", async () => {
        await store().setItem(USER, item("bob@example.com", { name: "Bob", groups: ["A"] }));
        const replacement = item("bob@example.com", { subscription: "from" });
        await store().setItem(USER, replacement);
        assert.deepEqual((await store().get(USER)).items, [replacement]);
      });

      it("lists every item", async () => {
        const items = ["carol@example.com", "bob@example.com", "dave@example.org"].map((jid) =>
          item(jid),
        );
        for (const each of items) await store().setItem(USER, each);
        assert.deepEqual((await store().get(USER)).items.sort(byJid), [...items].sort(byJid));
      });

      it("gives concurrent writes distinct versions", async () => {
        const contacts = ["a", "b", "c", "d", "e", "f"].map((l) => `${l}@example.com`);
        const versions = await Promise.all(contacts.map((jid) => store().setItem(USER, item(jid))));
        assert.equal(new Set(versions).size, contacts.length);
        const latest = Math.max(...versions.map(versionNumber));
        assert.equal((await store().get(USER)).version, String(latest));
      });

      it("removes an item and returns a higher version", async () => {
        const set = await store().setItem(USER, item("bob@example.com"));
        const removed = await store().removeItem(USER, "bob@example.com");
        assert.ok(removed !== undefined);
        assert.ok(versionNumber(removed) > versionNumber(set));
        assert.deepEqual(await store().get(USER), { version: removed, items: [] });
        assert.equal(await store().getItem(USER, "bob@example.com"), undefined);
      });

      it("returns undefined and keeps the version when removing a missing item", async () => {
        const set = await store().setItem(USER, item("bob@example.com"));
        assert.equal(await store().removeItem(USER, "carol@example.com"), undefined);
        assert.equal((await store().get(USER)).version, set);
        assert.equal(await store().removeItem("nobody@example.com", "bob@example.com"), undefined);
        assert.equal((await store().get("nobody@example.com")).version, "0");
      });

      it("keeps users apart", async () => {
        await store().setItem(USER, item("bob@example.com"));
        assert.deepEqual(await store().get("bob@example.com"), { version: "0", items: [] });
        assert.equal(await store().getItem("bob@example.com", "bob@example.com"), undefined);
      });

      it("copies items in and out", async () => {
        const given = item("bob@example.com", { name: "Bob", groups: ["Friends"] });
        await store().setItem(USER, given);
        given.groups.push("changed after set");
        given.name = "changed after set";
        const read = await store().getItem(USER, "bob@example.com");
        assert.ok(read);
        read.groups.push("changed after getItem");
        const [listed] = (await store().get(USER)).items;
        assert.ok(listed);
        listed.subscription = "both";
        assert.deepEqual(
          await store().getItem(USER, "bob@example.com"),
          item("bob@example.com", { name: "Bob", groups: ["Friends"] }),
        );
      });
    });

    describe("pending inbound subscriptions", () => {
      it("starts with none", async () => {
        assert.deepEqual(await store().listPendingIn(USER), new Map());
      });

      it("adds, replaces and lists requests by contact", async () => {
        await store().addPendingIn(USER, "bob@example.com", "<presence type='subscribe'/>");
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB);
        await store().addPendingIn(USER, "carol@example.com", "<presence id='c'/>");
        assert.deepEqual(
          await store().listPendingIn(USER),
          new Map([
            ["bob@example.com", SUBSCRIBE_FROM_BOB],
            ["carol@example.com", "<presence id='c'/>"],
          ]),
        );
      });

      it("removes a request once", async () => {
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB);
        assert.equal(await store().removePendingIn(USER, "bob@example.com"), true);
        assert.equal(await store().removePendingIn(USER, "bob@example.com"), false);
        assert.deepEqual(await store().listPendingIn(USER), new Map());
      });

      it("neither creates roster items nor changes the version", async () => {
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB);
        assert.deepEqual(await store().get(USER), { version: "0", items: [] });
        await store().removePendingIn(USER, "bob@example.com");
        assert.deepEqual(await store().get(USER), { version: "0", items: [] });
      });

      it("keeps users apart", async () => {
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB);
        assert.deepEqual(await store().listPendingIn("bob@example.com"), new Map());
        assert.equal(await store().removePendingIn("bob@example.com", "bob@example.com"), false);
      });

      it("copies the listed map out", async () => {
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB);
        (await store().listPendingIn(USER)).clear();
        assert.equal((await store().listPendingIn(USER)).size, 1);
      });
    });

    describe("deleteUser", () => {
      it("removes items and pending requests of that user only", async () => {
        await store().setItem(USER, item("bob@example.com"));
        await store().addPendingIn(USER, "carol@example.com", "<presence/>");
        await store().setItem("bob@example.com", item(USER));
        await store().addPendingIn("bob@example.com", "carol@example.com", "<presence/>");

        await store().deleteUser(USER);

        assert.deepEqual((await store().get(USER)).items, []);
        assert.equal(await store().getItem(USER, "bob@example.com"), undefined);
        assert.deepEqual(await store().listPendingIn(USER), new Map());
        assert.deepEqual((await store().get("bob@example.com")).items, [item(USER)]);
        assert.equal((await store().listPendingIn("bob@example.com")).size, 1);
      });

      it("accepts a user that has nothing stored", async () => {
        await store().deleteUser("nobody@example.com");
        assert.deepEqual(await store().get("nobody@example.com"), { version: "0", items: [] });
      });
    });
  });
}
