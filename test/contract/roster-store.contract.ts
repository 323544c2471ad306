// Contract of RosterStore (services/shared/stores/roster/roster-store.ts).
import assert from "node:assert/strict";
import type { RosterItem, RosterStore } from "../../services/shared/stores/roster/roster-store.js";
import { storePerTest, type StoreFactory } from "./store-factory.js";

const USER = "alice@example.com";
const SUBSCRIBE_FROM_BOB = "<presence from='bob@example.com' type='subscribe'/>";
/** A limit no test reaches unless it means to. */
const ROOMY = 1000;

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

    /** Writes `next` over whatever is stored for next.jid (a read, then a compare-and-set). */
    async function put(user: string, next: RosterItem, maxItems = ROOMY): Promise<string> {
      const current = await store().getItem(user, next.jid);
      const result = await store().replaceItem(user, next.jid, current, next, maxItems);
      assert.ok(result.ok, `put ${next.jid}: ${JSON.stringify(result)}`);
      return result.version;
    }

    /** Removes the item for `contact`, which must exist; returns the new version. */
    async function remove(user: string, contact: string): Promise<string> {
      const current = await store().getItem(user, contact);
      assert.ok(current, `remove ${contact}: no such item`);
      const result = await store().replaceItem(user, contact, current, undefined, ROOMY);
      assert.ok(result.ok, `remove ${contact}: ${JSON.stringify(result)}`);
      return result.version;
    }

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
          groups: ["Work", "Friends"],
        });
        await put(USER, bob);
        assert.deepEqual(await store().getItem(USER, "bob@example.com"), bob);
        assert.deepEqual((await store().get(USER)).items, [bob]);
      });

      it("leaves out approved=false and fields set to undefined", async () => {
        await put(USER, { ...item("bob@example.com"), name: undefined, approved: false });
        const read = await store().getItem(USER, "bob@example.com");
        assert.deepEqual(read, item("bob@example.com"));
        assert.ok(read && !("approved" in read) && !("name" in read));
      });

      it("returns increasing decimal versions, the same that get reports", async () => {
        const first = await put(USER, item("bob@example.com"));
        const second = await put(USER, item("carol@example.com"));
        const third = await put(USER, item("bob@example.com", { subscription: "both" }));
        assert.ok(versionNumber(first) > 0);
        assert.ok(versionNumber(second) > versionNumber(first));
        assert.ok(versionNumber(third) > versionNumber(second));
        assert.equal((await store().get(USER)).version, third);
      });

      it("replaces the item with the same jid", async () => {
        await put(USER, item("bob@example.com", { name: "Bob", groups: ["A"] }));
        const replacement = item("bob@example.com", { subscription: "from" });
        await put(USER, replacement);
        assert.deepEqual((await store().get(USER)).items, [replacement]);
      });

      it("lists every item", async () => {
        const items = ["carol@example.com", "bob@example.com", "dave@example.org"].map((jid) =>
          item(jid),
        );
        for (const each of items) await put(USER, each);
        assert.deepEqual((await store().get(USER)).items.sort(byJid), [...items].sort(byJid));
      });

      it("gives concurrent writes to different contacts distinct versions", async () => {
        const contacts = ["a", "b", "c", "d", "e", "f"].map((l) => `${l}@example.com`);
        const results = await Promise.all(
          contacts.map((jid) => store().replaceItem(USER, jid, undefined, item(jid), ROOMY)),
        );
        const versions = results.map((r) => (r.ok ? r.version : assert.fail(JSON.stringify(r))));
        assert.equal(new Set(versions).size, contacts.length);
        const latest = Math.max(...versions.map(versionNumber));
        assert.equal((await store().get(USER)).version, String(latest));
        assert.equal((await store().get(USER)).items.length, contacts.length);
      });

      it("removes an item and returns a higher version", async () => {
        const set = await put(USER, item("bob@example.com"));
        const removed = await remove(USER, "bob@example.com");
        assert.ok(versionNumber(removed) > versionNumber(set));
        assert.deepEqual(await store().get(USER), { version: removed, items: [] });
        assert.equal(await store().getItem(USER, "bob@example.com"), undefined);
      });

      it("removes an absent item as a success that keeps the version", async () => {
        const set = await put(USER, item("bob@example.com"));
        const result = await store().replaceItem(
          USER,
          "carol@example.com",
          undefined,
          undefined,
          ROOMY,
        );
        assert.deepEqual(result, { ok: true, version: set });
        assert.equal((await store().get(USER)).version, set);
        assert.deepEqual(
          await store().replaceItem("nobody@example.com", USER, undefined, undefined, ROOMY),
          { ok: true, version: "0" },
        );
        assert.deepEqual(await store().get("nobody@example.com"), { version: "0", items: [] });
      });

      it("keeps users apart", async () => {
        await put(USER, item("bob@example.com"));
        assert.deepEqual(await store().get("bob@example.com"), { version: "0", items: [] });
        assert.equal(await store().getItem("bob@example.com", "bob@example.com"), undefined);
      });

      it("copies items in and out", async () => {
        const given = item("bob@example.com", { name: "Bob", groups: ["Friends"] });
        await store().replaceItem(USER, given.jid, undefined, given, ROOMY);
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

      it("refuses an item whose jid is not the contact it is stored under", async () => {
        await assert.rejects(
          store().replaceItem(USER, "bob@example.com", undefined, item("carol@example.com"), ROOMY),
        );
        assert.deepEqual(await store().get(USER), { version: "0", items: [] });
      });
    });

    describe("compare-and-set (replaceItem)", () => {
      const BOB = "bob@example.com";

      it("fails with changed when another write came between the read and the write", async () => {
        await put(USER, item(BOB, { name: "Bob" }));
        const read = await store().getItem(USER, BOB);
        const other = await put(USER, item(BOB, { subscription: "to" }));

        const result = await store().replaceItem(
          USER,
          BOB,
          read,
          item(BOB, { name: "Robert" }),
          ROOMY,
        );
        assert.deepEqual(result, { ok: false, reason: "changed" });
        assert.deepEqual(await store().getItem(USER, BOB), item(BOB, { subscription: "to" }));
        assert.equal((await store().get(USER)).version, other, "a failure keeps the version");
      });

      it("fails with changed when the item appeared, or went, since it was read", async () => {
        const created = await put(USER, item(BOB));
        assert.deepEqual(
          await store().replaceItem(USER, BOB, undefined, item(BOB, { name: "x" }), ROOMY),
          { ok: false, reason: "changed" },
        );
        assert.deepEqual(await store().replaceItem(USER, BOB, undefined, undefined, ROOMY), {
          ok: false,
          reason: "changed",
        });
        assert.deepEqual(await store().getItem(USER, BOB), item(BOB));
        assert.equal((await store().get(USER)).version, created);

        const removed = await remove(USER, BOB);
        assert.deepEqual(
          await store().replaceItem(USER, BOB, item(BOB), item(BOB, { name: "x" }), ROOMY),
          { ok: false, reason: "changed" },
        );
        assert.deepEqual(await store().replaceItem(USER, BOB, item(BOB), undefined, ROOMY), {
          ok: false,
          reason: "changed",
        });
        assert.deepEqual(await store().get(USER), { version: removed, items: [] });
      });

      it("compares every field exactly, whatever the key order of `expected`", async () => {
        const stored = item(BOB, {
          name: "Bob",
          subscription: "to",
          ask: "subscribe",
          approved: true,
          groups: ["A", "B"],
        });
        const version = await put(USER, stored);
        const near: [string, RosterItem][] = [
          ["another name", { ...stored, name: "Bobby" }],
          ["no name", { ...stored, name: undefined }],
          ["another subscription", { ...stored, subscription: "both" }],
          ["no ask", { ...stored, ask: undefined }],
          ["no approval", { ...stored, approved: false }],
          ["a missing group", { ...stored, groups: ["A"] }],
          ["groups in another order", { ...stored, groups: ["B", "A"] }],
        ];
        for (const [what, expected] of near) {
          const result = await store().replaceItem(USER, BOB, expected, item(BOB), ROOMY);
          assert.deepEqual(result, { ok: false, reason: "changed" }, what);
        }
        assert.equal((await store().get(USER)).version, version);

        const reordered: RosterItem = {
          groups: ["A", "B"],
          approved: true,
          ask: "subscribe",
          subscription: "to",
          name: "Bob",
          jid: BOB,
        };
        const result = await store().replaceItem(USER, BOB, reordered, item(BOB), ROOMY);
        assert.ok(result.ok);
        assert.ok(versionNumber(result.version) > versionNumber(version));
        assert.deepEqual(await store().getItem(USER, BOB), item(BOB));
      });

      it("lets exactly one of several concurrent writers from the same read win", async () => {
        const before = await put(USER, item(BOB));
        const read = await store().getItem(USER, BOB);
        const names = ["one", "two", "three", "four", "five"];
        const results = await Promise.all(
          names.map((n) => store().replaceItem(USER, BOB, read, item(BOB, { name: n }), ROOMY)),
        );
        const winners = results.flatMap((r, i) => (r.ok ? [{ name: names[i], ...r }] : []));
        assert.equal(winners.length, 1, JSON.stringify(results));
        for (const r of results) if (!r.ok) assert.equal(r.reason, "changed");
        const [winner] = winners;
        assert.equal(versionNumber(winner.version), versionNumber(before) + 1);
        assert.deepEqual(await store().getItem(USER, BOB), item(BOB, { name: winner.name }));
        assert.equal((await store().get(USER)).version, winner.version);
      });

      it("lets exactly one of several concurrent creators of the same item win", async () => {
        const results = await Promise.all(
          ["a", "b", "c"].map((g) =>
            store().replaceItem(USER, BOB, undefined, item(BOB, { groups: [g] }), ROOMY),
          ),
        );
        assert.equal(results.filter((r) => r.ok).length, 1, JSON.stringify(results));
        assert.equal((await store().get(USER)).items.length, 1);
        assert.equal((await store().get(USER)).version, "1");
      });
    });

    describe("roster size limit (maxItems)", () => {
      it("refuses to create an item past the limit and changes nothing", async () => {
        await put(USER, item("a@example.com"), 2);
        const version = await put(USER, item("b@example.com"), 2);
        const result = await store().replaceItem(
          USER,
          "c@example.com",
          undefined,
          item("c@example.com"),
          2,
        );
        assert.deepEqual(result, { ok: false, reason: "full" });
        assert.equal(await store().getItem(USER, "c@example.com"), undefined);
        const roster = await store().get(USER);
        assert.equal(roster.version, version, "a refusal keeps the version");
        assert.deepEqual(roster.items.sort(byJid), [item("a@example.com"), item("b@example.com")]);
      });

      it("still replaces and removes items at the limit, and creates again below it", async () => {
        await put(USER, item("a@example.com"), 2);
        await put(USER, item("b@example.com"), 2);
        await put(USER, item("a@example.com", { name: "A" }), 2);
        await remove(USER, "b@example.com");
        await put(USER, item("c@example.com"), 2);
        assert.deepEqual((await store().get(USER)).items.map((i) => i.jid).sort(), [
          "a@example.com",
          "c@example.com",
        ]);
      });

      it("holds the limit against concurrent creators", async () => {
        await put(USER, item("a@example.com"), 3);
        const contacts = ["b", "c", "d", "e", "f"].map((l) => `${l}@example.com`);
        const results = await Promise.all(
          contacts.map((jid) => store().replaceItem(USER, jid, undefined, item(jid), 3)),
        );
        assert.equal(results.filter((r) => r.ok).length, 2, JSON.stringify(results));
        for (const r of results) if (!r.ok) assert.equal(r.reason, "full");
        assert.equal((await store().get(USER)).items.length, 3);
      });
    });

    describe("pending inbound subscriptions", () => {
      it("starts with none", async () => {
        assert.deepEqual(await store().listPendingIn(USER), new Map());
        assert.equal(await store().hasPendingIn(USER, "bob@example.com"), false);
      });

      it("adds, replaces and lists requests by contact", async () => {
        assert.equal(
          await store().addPendingIn(USER, "bob@example.com", "<presence type='subscribe'/>", 10),
          true,
        );
        assert.equal(
          await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB, 10),
          true,
        );
        assert.equal(
          await store().addPendingIn(USER, "carol@example.com", "<presence id='c'/>", 10),
          true,
        );
        assert.deepEqual(
          await store().listPendingIn(USER),
          new Map([
            ["bob@example.com", SUBSCRIBE_FROM_BOB],
            ["carol@example.com", "<presence id='c'/>"],
          ]),
        );
        assert.equal(await store().hasPendingIn(USER, "bob@example.com"), true);
        assert.equal(await store().hasPendingIn(USER, "dave@example.com"), false);
      });

      it("removes a request once", async () => {
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB, 10);
        assert.equal(await store().removePendingIn(USER, "bob@example.com"), true);
        assert.equal(await store().removePendingIn(USER, "bob@example.com"), false);
        assert.equal(await store().hasPendingIn(USER, "bob@example.com"), false);
        assert.deepEqual(await store().listPendingIn(USER), new Map());
      });

      it("refuses a new contact's request past the limit, but replaces a stored one", async () => {
        await store().addPendingIn(USER, "bob@example.com", "<presence id='b1'/>", 2);
        await store().addPendingIn(USER, "carol@example.com", "<presence id='c'/>", 2);
        assert.equal(await store().addPendingIn(USER, "dave@example.com", "<presence/>", 2), false);
        assert.equal(await store().hasPendingIn(USER, "dave@example.com"), false);
        assert.equal(
          await store().addPendingIn(USER, "bob@example.com", "<presence id='b2'/>", 2),
          true,
        );
        assert.equal(
          (await store().listPendingIn(USER)).get("bob@example.com"),
          "<presence id='b2'/>",
        );
        await store().removePendingIn(USER, "carol@example.com");
        assert.equal(await store().addPendingIn(USER, "dave@example.com", "<presence/>", 2), true);
        assert.deepEqual([...(await store().listPendingIn(USER)).keys()].sort(), [
          "bob@example.com",
          "dave@example.com",
        ]);
      });

      it("holds the limit against concurrent requests", async () => {
        const contacts = ["a", "b", "c", "d", "e", "f"].map((l) => `${l}@example.com`);
        const added = await Promise.all(
          contacts.map((jid) => store().addPendingIn(USER, jid, "<presence/>", 4)),
        );
        assert.equal(added.filter(Boolean).length, 4);
        assert.equal((await store().listPendingIn(USER)).size, 4);
      });

      it("refuses a request that would take the stored requests past max bytes", async () => {
        const request = (id: string, pad: number) =>
          `<presence id='${id}'>${"é".repeat(pad)}</presence>`;
        const a = request("a", 20);
        const b = request("b", 20);
        const max = Buffer.byteLength(a) + Buffer.byteLength(b);
        assert.equal(await store().addPendingIn(USER, "bob@example.com", a, 10, max), true);
        assert.equal(await store().addPendingIn(USER, "carol@example.com", b, 10, max), true);
        assert.equal(
          await store().addPendingIn(USER, "dave@example.com", "<presence/>", 10, max),
          false,
        );
        // A replacement counts instead of the request it replaces, not on top of it.
        const smaller = request("b2", 1);
        assert.equal(await store().addPendingIn(USER, "carol@example.com", smaller, 10, max), true);
        assert.equal(
          await store().addPendingIn(USER, "carol@example.com", request("b3", 40), 10, max),
          false,
        );
        assert.equal(
          await store().addPendingIn(USER, "dave@example.com", "<presence/>", 10, max),
          true,
        );
        const stored = await store().listPendingIn(USER);
        assert.deepEqual([...stored.keys()].sort(), [
          "bob@example.com",
          "carol@example.com",
          "dave@example.com",
        ]);
        assert.equal(stored.get("carol@example.com"), smaller);
      });

      it("never overshoots max bytes under concurrent requests", async () => {
        const contacts = ["a", "b", "c", "d", "e", "f"].map((c) => `${c}@example.com`);
        const stanza = "<presence type='subscribe'/>";
        const max = 3 * Buffer.byteLength(stanza);
        const added = await Promise.all(
          contacts.map((jid) => store().addPendingIn(USER, jid, stanza, 100, max)),
        );
        assert.equal(added.filter(Boolean).length, 3);
      });

      it("counts apart from roster items: a full roster still takes requests", async () => {
        await put(USER, item("a@example.com"), 1);
        assert.equal(
          await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB, 1),
          true,
        );
        assert.equal(
          await store().addPendingIn(USER, "carol@example.com", "<presence/>", 1),
          false,
        );
        assert.equal((await store().get(USER)).items.length, 1);
      });

      it("neither creates roster items nor changes the version", async () => {
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB, 10);
        assert.deepEqual(await store().get(USER), { version: "0", items: [] });
        await store().removePendingIn(USER, "bob@example.com");
        assert.deepEqual(await store().get(USER), { version: "0", items: [] });
      });

      it("keeps users apart", async () => {
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB, 10);
        assert.deepEqual(await store().listPendingIn("bob@example.com"), new Map());
        assert.equal(await store().hasPendingIn("bob@example.com", "bob@example.com"), false);
        assert.equal(await store().removePendingIn("bob@example.com", "bob@example.com"), false);
      });

      it("copies the listed map out", async () => {
        await store().addPendingIn(USER, "bob@example.com", SUBSCRIBE_FROM_BOB, 10);
        (await store().listPendingIn(USER)).clear();
        assert.equal((await store().listPendingIn(USER)).size, 1);
      });
    });

    describe("deleteUser", () => {
      it("removes items and pending requests of that user only", async () => {
        await put(USER, item("bob@example.com"));
        await store().addPendingIn(USER, "carol@example.com", "<presence/>", 10);
        await put("bob@example.com", item(USER));
        await store().addPendingIn("bob@example.com", "carol@example.com", "<presence/>", 10);

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
