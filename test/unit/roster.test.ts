// RFC 6121 §2 (roster management) and §2.6 (versioning), through the session core.
import { strict as assert } from "node:assert";
import type { ConnState } from "../../services/session/core/connection.js";
import { HandlerChain } from "../../services/session/core/handler-chain.js";
import { registerPresence } from "../../services/session/features/presence/presence.js";
import { registerRoster } from "../../services/session/features/roster/roster.js";
import type { RosterItem } from "../../services/shared/stores/roster/roster-store.js";
import { MODIFY_ROSTER_ITEM_ATTEMPTS } from "../../services/session/features/roster/modify-item.js";
import { TestSessionContext, assertXml, assertXmlList, input } from "../helpers/session-context.js";
import { captureLogs, interfereAfterReads, seedItem } from "../helpers/roster-fixtures.js";

const ALICE = "alice@example.com";
const BOB = "bob@example.com";

function chainWithRoster(): HandlerChain {
  const chain = new HandlerChain();
  registerRoster(chain);
  registerPresence(chain);
  return chain;
}

function errorOf(stanza: string, id: string, condition: string, type: string): string {
  return `<iq type="error" id="${id}" to="${stanza}" from="example.com"><error type="${type}"><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`;
}

describe("roster (RFC 6121 §2)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let phone: ConnState;

  beforeEach(async () => {
    ctx = new TestSessionContext();
    chain = chainWithRoster();
    phone = await ctx.connect(`${ALICE}/phone`);
  });

  async function rosterGet(conn: ConnState, id: string, ver?: string): Promise<void> {
    const verAttr = ver === undefined ? "" : ` ver="${ver}"`;
    await input(
      ctx,
      chain,
      conn,
      `<iq type="get" id="${id}"><query xmlns="jabber:iq:roster"${verAttr}/></iq>`,
    );
  }

  describe("get (§2.1.3) and versioning (§2.6)", () => {
    it("returns an empty roster with version 0 and makes the resource interested", async () => {
      await rosterGet(phone, "g1");
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="g1" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="0"/></iq>`,
      ]);
      assert.equal(phone.interested, true);
      const [route] = await ctx.stores.routes.list(ALICE);
      assert.equal(route.interested, true);
    });

    it("returns every item with subscription, ask, approved, name and groups", async () => {
      await seedItem(ctx, ALICE, {
        jid: BOB,
        name: "Bob",
        subscription: "to",
        groups: ["Friends", "Work"],
      });
      await seedItem(ctx, ALICE, {
        jid: "carol@example.com",
        subscription: "none",
        ask: "subscribe",
        approved: true,
        groups: [],
      });
      await rosterGet(phone, "g1");
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="g1" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="2">
          <item jid="${BOB}" name="Bob" subscription="to"><group>Friends</group><group>Work</group></item>
          <item jid="carol@example.com" subscription="none" ask="subscribe" approved="true"/>
        </query></iq>`,
      ]);
    });

    it("answers an up-to-date ver with an empty result, and a stale one with the roster", async () => {
      await seedItem(ctx, ALICE, { jid: BOB, subscription: "none", groups: [] });
      await rosterGet(phone, "g1", "1");
      await rosterGet(phone, "g2", "0");
      await rosterGet(phone, "g3", "");
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="g1" to="${ALICE}/phone"/>`,
        `<iq type="result" id="g2" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="1"><item jid="${BOB}" subscription="none"/></query></iq>`,
        `<iq type="result" id="g3" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="1"><item jid="${BOB}" subscription="none"/></query></iq>`,
      ]);
    });
  });

  describe("set (§2.3, §2.4)", () => {
    it("adds an item, pushes it to the interested resources only, then answers", async () => {
      const laptop = await ctx.connect(`${ALICE}/laptop`);
      const tablet = await ctx.connect(`${ALICE}/tablet`);
      await rosterGet(phone, "g1");
      await rosterGet(tablet, "g2");
      ctx.clearOutput();

      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s1"><query xmlns="jabber:iq:roster"><item jid="Bob@Example.com" name="Bob"><group>Friends</group></item></query></iq>`,
      );
      const push = (resource: string) =>
        `<iq type="set" id="*" to="${ALICE}/${resource}"><query xmlns="jabber:iq:roster" ver="1"><item jid="${BOB}" name="Bob" subscription="none"><group>Friends</group></item></query></iq>`;
      assertXmlList(ctx.received(phone), [
        push("phone"),
        `<iq type="result" id="s1" to="${ALICE}/phone"/>`,
      ]);
      assertXmlList(ctx.received(tablet), [push("tablet")]);
      assertXmlList(ctx.received(laptop), []);
      assert.deepEqual(await ctx.stores.rosters.getItem(ALICE, BOB), {
        jid: BOB,
        name: "Bob",
        subscription: "none",
        groups: ["Friends"],
      });
      // Each push has its own id.
      const ids = [...ctx.received(phone), ...ctx.received(tablet)].map((s) => s.attrs.id);
      assert.equal(new Set(ids).size, 3);
    });

    it("updates name and groups but keeps the subscription state, ignoring subscription and ask", async () => {
      await seedItem(ctx, ALICE, {
        jid: BOB,
        name: "Bob",
        subscription: "both",
        groups: ["Friends"],
      });
      await rosterGet(phone, "g1");
      ctx.clearOutput();
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s1"><query xmlns="jabber:iq:roster"><item jid="${BOB}" subscription="none" ask="subscribe" approved="true"><group>Work</group><group>Chess</group></item></query></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        `<iq type="set" id="*" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="2"><item jid="${BOB}" subscription="both"><group>Work</group><group>Chess</group></item></query></iq>`,
        `<iq type="result" id="s1" to="${ALICE}/phone"/>`,
      ]);
    });

    it("refuses the user's own JID with not-allowed, in any case, and stores nothing", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s1"><query xmlns="jabber:iq:roster"><item jid="${ALICE}" name="Notes"/></query></iq>`,
      );
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s2"><query xmlns="jabber:iq:roster"><item jid="Alice@EXAMPLE.com." subscription="remove"/></query></iq>`,
      );
      const notAllowed = (id: string) =>
        `<iq type="error" id="${id}" to="${ALICE}/phone" from="example.com"><error type="cancel">` +
        `<not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
        `<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">your own JID cannot be a roster item</text></error></iq>`;
      assertXmlList(ctx.received(phone), [notAllowed("s1"), notAllowed("s2")]);
      assert.equal(await ctx.stores.rosters.getItem(ALICE, ALICE), undefined);
    });

    it("refuses a full JID with bad-request, to add or to remove", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s1"><query xmlns="jabber:iq:roster"><item jid="${BOB}/pc"/></query></iq>`,
      );
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s2"><query xmlns="jabber:iq:roster"><item jid="${BOB}/pc" subscription="remove"/></query></iq>`,
      );
      const badRequest = (id: string) =>
        `<iq type="error" id="${id}" to="${ALICE}/phone" from="example.com"><error type="modify">` +
        `<bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
        `<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">a roster item's jid is a bare JID</text></error></iq>`;
      assertXmlList(ctx.received(phone), [badRequest("s1"), badRequest("s2")]);
      assert.deepEqual((await ctx.stores.rosters.get(ALICE)).items, []);
    });

    it("accepts a bare domain (a gateway or service, as Prosody and ejabberd do)", async () => {
      await rosterGet(phone, "g1");
      ctx.clearOutput();
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s1"><query xmlns="jabber:iq:roster"><item jid="Gateway.Example.org" name="GW"/></query></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        `<iq type="set" id="*" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="1"><item jid="gateway.example.org" name="GW" subscription="none"/></query></iq>`,
        `<iq type="result" id="s1" to="${ALICE}/phone"/>`,
      ]);
    });

    it("still removes a full-JID or own-JID item an older version stored", async () => {
      await seedItem(ctx, ALICE, { jid: `${BOB}/pc`, subscription: "none", groups: [] });
      await seedItem(ctx, ALICE, { jid: ALICE, subscription: "none", groups: [] });
      for (const [id, jid] of [
        ["r1", `${BOB}/pc`],
        ["r2", ALICE],
      ])
        await input(
          ctx,
          chain,
          phone,
          `<iq type="set" id="${id}"><query xmlns="jabber:iq:roster"><item jid="${jid}" subscription="remove"/></query></iq>`,
        );
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="r1" to="${ALICE}/phone"/>`,
        `<iq type="result" id="r2" to="${ALICE}/phone"/>`,
      ]);
      assert.deepEqual((await ctx.stores.rosters.get(ALICE)).items, []);
    });

    const bad: [string, string, string, string][] = [
      ["two items", `<item jid="${BOB}"/><item jid="carol@example.com"/>`, "bad-request", "modify"],
      ["no item", ``, "bad-request", "modify"],
      ["an item without jid", `<item name="x"/>`, "bad-request", "modify"],
      ["a malformed jid", `<item jid="a@b@c/"/>`, "jid-malformed", "modify"],
      ["a full JID", `<item jid="${BOB}/pc" name="Bob"/>`, "bad-request", "modify"],
      ["the user's own JID", `<item jid="${ALICE}"/>`, "not-allowed", "cancel"],
      [
        "duplicate groups",
        `<item jid="${BOB}"><group>A</group><group>A</group></item>`,
        "bad-request",
        "modify",
      ],
      ["an empty group", `<item jid="${BOB}"><group></group></item>`, "not-acceptable", "modify"],
      [
        "a name that is too long",
        `<item jid="${BOB}" name="${"n".repeat(1025)}"/>`,
        "not-acceptable",
        "modify",
      ],
      [
        "a group that is too long",
        `<item jid="${BOB}"><group>${"g".repeat(1025)}</group></item>`,
        "not-acceptable",
        "modify",
      ],
    ];
    for (const [what, items, condition, type] of bad) {
      it(`rejects ${what} with ${condition} and changes nothing (§2.3.3)`, async () => {
        await rosterGet(phone, "g1");
        ctx.clearOutput();
        await input(
          ctx,
          chain,
          phone,
          `<iq type="set" id="s1"><query xmlns="jabber:iq:roster">${items}</query></iq>`,
        );
        const [reply] = ctx.received(phone);
        assert.equal(ctx.received(phone).length, 1);
        assert.equal(reply.attrs.type, "error");
        assert.equal(reply.attrs.id, "s1");
        const error = reply.getChild("error");
        assert.equal(error?.attrs.type, type);
        assert.ok(
          error?.getChild(condition, "urn:ietf:params:xml:ns:xmpp-stanzas"),
          reply.toString(),
        );
        assert.equal((await ctx.stores.rosters.get(ALICE)).version, "0");
      });
    }
  });

  describe("remove (§2.5)", () => {
    it("removes an item and pushes subscription='remove'", async () => {
      await seedItem(ctx, ALICE, { jid: BOB, subscription: "none", groups: [] });
      await rosterGet(phone, "g1");
      ctx.clearOutput();
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="${BOB}" subscription="remove"/></query></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        `<iq type="set" id="*" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="2"><item jid="${BOB}" subscription="remove"/></query></iq>`,
        `<iq type="result" id="r1" to="${ALICE}/phone"/>`,
      ]);
      assert.equal(await ctx.stores.rosters.getItem(ALICE, BOB), undefined);
    });

    it("answers item-not-found for an item that is not there (§2.5.3)", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="${BOB}" subscription="remove"/></query></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        errorOf(`${ALICE}/phone`, "r1", "item-not-found", "cancel"),
      ]);
    });

    it("ends the subscriptions both ways: unavailable, unsubscribed and unsubscribe to the contact (§2.5.2)", async () => {
      await seedItem(ctx, ALICE, { jid: BOB, subscription: "both", groups: [] });
      await seedItem(ctx, BOB, {
        jid: ALICE,
        name: "Alice",
        subscription: "both",
        groups: [],
      });
      const pc = await ctx.connect(`${BOB}/pc`);
      await rosterGet(phone, "g1");
      await rosterGet(pc, "g2");
      await input(ctx, chain, phone, `<presence/>`);
      await input(ctx, chain, pc, `<presence/>`);
      ctx.clearOutput();

      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="${BOB}" subscription="remove"/></query></iq>`,
      );
      assertXmlList(ctx.received(pc), [
        // §3.2.2: unavailable while bob is still subscribed, then the cancellation.
        `<presence type="unavailable" from="${ALICE}/phone" to="${BOB}"/>`,
        `<presence type="unsubscribed" from="${ALICE}" to="${BOB}"/>`,
        `<iq type="set" id="*" to="${BOB}/pc"><query xmlns="jabber:iq:roster" ver="2"><item jid="${ALICE}" name="Alice" subscription="from"/></query></iq>`,
        // §3.3.3: alice unsubscribes from bob.
        `<presence type="unsubscribe" from="${ALICE}" to="${BOB}"/>`,
        `<iq type="set" id="*" to="${BOB}/pc"><query xmlns="jabber:iq:roster" ver="3"><item jid="${ALICE}" name="Alice" subscription="none"/></query></iq>`,
      ]);
      assertXmlList(ctx.received(phone), [
        `<iq type="set" id="*" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="2"><item jid="${BOB}" subscription="remove"/></query></iq>`,
        // §3.3.3: bob's server tells alice that bob's resources are gone for her.
        `<presence type="unavailable" from="${BOB}/pc" to="${ALICE}"/>`,
        `<iq type="result" id="r1" to="${ALICE}/phone"/>`,
      ]);
      assert.deepEqual(await ctx.stores.rosters.getItem(BOB, ALICE), {
        jid: ALICE,
        name: "Alice",
        subscription: "none",
        groups: [],
      });
    });

    it("denies a pending request and cancels a pending one of its own", async () => {
      await ctx.createAccount(BOB);
      await seedItem(ctx, ALICE, {
        jid: BOB,
        subscription: "none",
        ask: "subscribe",
        groups: [],
      });
      await ctx.stores.rosters.addPendingIn(
        BOB,
        ALICE,
        `<presence type="subscribe" from="${ALICE}" to="${BOB}"/>`,
        100,
      );
      await ctx.stores.rosters.addPendingIn(
        ALICE,
        BOB,
        `<presence type="subscribe" from="${BOB}" to="${ALICE}"/>`,
        100,
      );
      await seedItem(ctx, BOB, {
        jid: ALICE,
        subscription: "none",
        ask: "subscribe",
        groups: [],
      });
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="${BOB}" subscription="remove"/></query></iq>`,
      );
      assert.deepEqual([...(await ctx.stores.rosters.listPendingIn(ALICE)).keys()], []);
      assert.deepEqual([...(await ctx.stores.rosters.listPendingIn(BOB)).keys()], []);
      // bob's own request was denied: his ask is gone.
      assert.deepEqual(await ctx.stores.rosters.getItem(BOB, ALICE), {
        jid: ALICE,
        subscription: "none",
        groups: [],
      });
    });
  });

  describe("limits from config", () => {
    const setItem = (id: string, item: string) =>
      `<iq type="set" id="${id}"><query xmlns="jabber:iq:roster">${item}</query></iq>`;

    it("measures names and groups in UTF-8 bytes against rosterNameMaxBytes and rosterGroupMaxBytes (§2.3.3)", async () => {
      ctx = new TestSessionContext({ config: { rosterNameMaxBytes: 4, rosterGroupMaxBytes: 3 } });
      phone = await ctx.connect(`${ALICE}/phone`);
      await input(ctx, chain, phone, setItem("n1", `<item jid="${BOB}" name="élan"/>`));
      await input(ctx, chain, phone, setItem("g1", `<item jid="${BOB}"><group>éé</group></item>`));
      await input(
        ctx,
        chain,
        phone,
        setItem("ok", `<item jid="${BOB}" name="élu"><group>abc</group></item>`),
      );
      const [n1, g1, ok] = ctx.received(phone);
      for (const [reply, id] of [
        [n1, "n1"],
        [g1, "g1"],
      ] as const) {
        assert.equal(reply.attrs.id, id);
        assert.ok(
          reply
            .getChild("error")
            ?.getChild("not-acceptable", "urn:ietf:params:xml:ns:xmpp-stanzas"),
          reply.toString(),
        );
      }
      assertXml(ok, `<iq type="result" id="ok" to="${ALICE}/phone"/>`);
      assert.deepEqual(await ctx.stores.rosters.getItem(ALICE, BOB), {
        jid: BOB,
        name: "élu",
        subscription: "none",
        groups: ["abc"],
      });
    });

    it("refuses an item past rosterMaxItems with policy-violation, and changes nothing", async () => {
      ctx = new TestSessionContext({ config: { rosterMaxItems: 2 } });
      phone = await ctx.connect(`${ALICE}/phone`);
      await rosterGet(phone, "g1");
      await input(ctx, chain, phone, setItem("s1", `<item jid="carol@example.com"/>`));
      await input(ctx, chain, phone, setItem("s2", `<item jid="dave@example.com"/>`));
      ctx.clearOutput();

      await input(ctx, chain, phone, setItem("s3", `<item jid="${BOB}"/>`));
      assertXmlList(ctx.received(phone), [
        `<iq type="error" id="s3" to="${ALICE}/phone" from="example.com"><error type="cancel"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">the roster is full (2 items)</text></error></iq>`,
      ]);
      assert.equal(await ctx.stores.rosters.getItem(ALICE, BOB), undefined);
      assert.equal((await ctx.stores.rosters.get(ALICE)).version, "2");

      // A full roster still takes updates and removals, and then room is made.
      ctx.clearOutput();
      await input(ctx, chain, phone, setItem("s4", `<item jid="carol@example.com" name="C"/>`));
      await input(
        ctx,
        chain,
        phone,
        setItem("r1", `<item jid="dave@example.com" subscription="remove"/>`),
      );
      await input(ctx, chain, phone, setItem("s5", `<item jid="${BOB}"/>`));
      const results = ctx.received(phone).filter((s) => s.attrs.type !== "set");
      assert.deepEqual(
        results.map((s) => [s.attrs.id, s.attrs.type]),
        [
          ["s4", "result"],
          ["r1", "result"],
          ["s5", "result"],
        ],
      );
      assert.deepEqual((await ctx.stores.rosters.get(ALICE)).items.map((i) => i.jid).sort(), [
        BOB,
        "carol@example.com",
      ]);
    });
  });

  describe("concurrent changes to the same item", () => {
    it("re-reads and re-applies a roster set, so another process's change is not lost", async () => {
      await seedItem(ctx, ALICE, { jid: BOB, subscription: "none", ask: "subscribe", groups: [] });
      await rosterGet(phone, "g1");
      ctx.clearOutput();
      // Between alice's read and write, bob's approval lands (RFC 6121 A.3.3) elsewhere.
      const reads = interfereAfterReads(ctx, ALICE, BOB, 1, (current) => ({
        ...(current as RosterItem),
        subscription: "to",
        ask: undefined,
      }));
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s1"><query xmlns="jabber:iq:roster"><item jid="${BOB}" name="Bob"><group>Friends</group></item></query></iq>`,
      );
      assert.equal(reads(), 1);
      const expected: RosterItem = {
        jid: BOB,
        name: "Bob",
        subscription: "to",
        groups: ["Friends"],
      };
      assert.deepEqual(await ctx.stores.rosters.getItem(ALICE, BOB), expected);
      assertXmlList(ctx.received(phone), [
        `<iq type="set" id="*" to="${ALICE}/phone"><query xmlns="jabber:iq:roster" ver="3"><item jid="${BOB}" name="Bob" subscription="to"><group>Friends</group></item></query></iq>`,
        `<iq type="result" id="s1" to="${ALICE}/phone"/>`,
      ]);
    });

    it(`gives up after ${MODIFY_ROSTER_ITEM_ATTEMPTS} attempts with internal-server-error, logged`, async () => {
      await seedItem(ctx, ALICE, { jid: BOB, subscription: "none", groups: [] });
      const logs = captureLogs(ctx);
      const reads = interfereAfterReads(ctx, ALICE, BOB, Infinity, (current, n) => ({
        ...(current as RosterItem),
        name: `busy ${n}`,
      }));
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s1"><query xmlns="jabber:iq:roster"><item jid="${BOB}" name="Bob"/></query></iq>`,
      );
      assert.equal(reads(), MODIFY_ROSTER_ITEM_ATTEMPTS);
      const [reply] = ctx.received(phone);
      assert.equal(ctx.received(phone).length, 1);
      assert.equal(reply.attrs.type, "error");
      assert.equal(reply.getChild("error")?.attrs.type, "wait");
      assert.ok(
        reply
          .getChild("error")
          ?.getChild("internal-server-error", "urn:ietf:params:xml:ns:xmpp-stanzas"),
        reply.toString(),
      );
      assert.equal(
        (await ctx.stores.rosters.getItem(ALICE, BOB))?.name,
        `busy ${MODIFY_ROSTER_ITEM_ATTEMPTS}`,
      );
      const failure = logs.find((l) => l.level === 50);
      assert.ok(failure, JSON.stringify(logs));
      assert.equal(failure.jid, ALICE);
      assert.equal(failure.contact, BOB);
      assert.equal(failure.attempts, MODIFY_ROSTER_ITEM_ATTEMPTS);
    });
  });

  it("drops the client's answers to pushes (§2.1.6)", async () => {
    await rosterGet(phone, "g1");
    ctx.clearOutput();
    await input(ctx, chain, phone, `<iq type="result" id="push-1"/>`);
    assertXmlList(ctx.received(phone), []);
  });
});
