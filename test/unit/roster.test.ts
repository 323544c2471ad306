// RFC 6121 §2 (roster management) and §2.6 (versioning), through the session core.
import { strict as assert } from "node:assert";
import type { ConnState } from "../../services/session/core/connection.js";
import { HandlerChain } from "../../services/session/core/handler-chain.js";
import { registerPresence } from "../../services/session/features/presence/presence.js";
import { registerRoster } from "../../services/session/features/roster/roster.js";
import { TestSessionContext, assertXmlList, input } from "../helpers/session-context.js";

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
      await ctx.stores.rosters.setItem(ALICE, {
        jid: BOB,
        name: "Bob",
        subscription: "to",
        groups: ["Friends", "Work"],
      });
      await ctx.stores.rosters.setItem(ALICE, {
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
      await ctx.stores.rosters.setItem(ALICE, { jid: BOB, subscription: "none", groups: [] });
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
      await ctx.stores.rosters.setItem(ALICE, {
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

    it("accepts the user's own JID (RFC 6121 has no error case for it)", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="s1"><query xmlns="jabber:iq:roster"><item jid="${ALICE}" name="Notes"/></query></iq>`,
      );
      assertXmlList(ctx.received(phone), [`<iq type="result" id="s1" to="${ALICE}/phone"/>`]);
      assert.equal((await ctx.stores.rosters.getItem(ALICE, ALICE))?.name, "Notes");
    });

    const bad: [string, string, string, string][] = [
      ["two items", `<item jid="${BOB}"/><item jid="carol@example.com"/>`, "bad-request", "modify"],
      ["no item", ``, "bad-request", "modify"],
      ["an item without jid", `<item name="x"/>`, "bad-request", "modify"],
      ["a malformed jid", `<item jid="a@b@c/"/>`, "jid-malformed", "modify"],
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
      await ctx.stores.rosters.setItem(ALICE, { jid: BOB, subscription: "none", groups: [] });
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
      await ctx.stores.rosters.setItem(ALICE, { jid: BOB, subscription: "both", groups: [] });
      await ctx.stores.rosters.setItem(BOB, {
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
      await ctx.stores.rosters.setItem(ALICE, {
        jid: BOB,
        subscription: "none",
        ask: "subscribe",
        groups: [],
      });
      await ctx.stores.rosters.addPendingIn(
        BOB,
        ALICE,
        `<presence type="subscribe" from="${ALICE}" to="${BOB}"/>`,
      );
      await ctx.stores.rosters.addPendingIn(
        ALICE,
        BOB,
        `<presence type="subscribe" from="${BOB}" to="${ALICE}"/>`,
      );
      await ctx.stores.rosters.setItem(BOB, {
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

  it("drops the client's answers to pushes (§2.1.6)", async () => {
    await rosterGet(phone, "g1");
    ctx.clearOutput();
    await input(ctx, chain, phone, `<iq type="result" id="push-1"/>`);
    assertXmlList(ctx.received(phone), []);
  });
});
