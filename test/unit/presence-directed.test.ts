// RFC 6121 §4.6 (directed presence): to the addressed JID only, remembered for
// non-subscribers within directedPresenceMaxRecipients / directedPresenceMaxBytes and kept out
// of the connection's snapshot; presence errors routed to a connected full JID only. Through the
// session core with memory stores.
import { strict as assert } from "node:assert";
import { parse } from "ltx";
import { handleFrame } from "../../services/session/core/dispatch.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import {
  ALICE,
  BOB,
  CAROL,
  DAVE,
  ERIN,
  conditionOf,
  presenceWorld,
  type PresenceWorld,
} from "../helpers/presence-fixtures.js";
import {
  assertXml,
  assertXmlList,
  input,
  type TestSessionContext,
} from "../helpers/session-context.js";

describe("presence (RFC 6121 §4)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let item: PresenceWorld["item"];
  let online: PresenceWorld["online"];
  let directedOf: PresenceWorld["directedOf"];
  beforeEach(() => {
    ({ ctx, chain, item, online, directedOf } = presenceWorld());
  });

  describe("directed presence (§4.6)", () => {
    it("remembers at most directedPresenceMaxRecipients non-subscribers per connection", async () => {
      ctx.config.directedPresenceMaxRecipients = 2;
      await ctx.createAccount(ERIN);
      await ctx.createAccount(DAVE);
      await ctx.createAccount(CAROL);
      const phone = await online(`${ALICE}/phone`);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence to="${ERIN}"/>`);
      await input(ctx, chain, phone, `<presence to="${DAVE}"/>`);
      await input(ctx, chain, phone, `<presence to="${CAROL}" id="p3"/>`);
      await input(ctx, chain, phone, `<presence to="${ERIN}" id="p4"/>`);
      const replies = ctx.received(phone);
      assert.equal(replies.length, 1, replies.join("\n"));
      assert.equal(replies[0].attrs.id, "p3");
      assert.equal(conditionOf(replies[0]), "resource-constraint");
      assert.deepEqual(await directedOf(phone), [ERIN, DAVE].sort());
    });

    it("remembers at most directedPresenceMaxBytes of recipient JIDs per connection", async () => {
      ctx.config.directedPresenceMaxBytes = 2 * ERIN.length + 5;
      const phone = await online(`${ALICE}/phone`);
      await ctx.createAccount(ERIN);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence to="${ERIN}/a"/>`);
      await input(ctx, chain, phone, `<presence to="${ERIN}/b"/>`);
      await input(ctx, chain, phone, `<presence to="${ERIN}/long" id="p3"/>`);
      const replies = ctx.received(phone);
      assert.equal(replies.length, 1, replies.join("\n"));
      assert.equal(conditionOf(replies[0]), "resource-constraint");
      assert.deepEqual(await directedOf(phone), [`${ERIN}/a`, `${ERIN}/b`]);
    });

    it("keeps the list out of the connection state its snapshots are made of", async () => {
      await ctx.createAccount(ERIN);
      await ctx.createAccount(BOB);
      const phone = await online(`${ALICE}/phone`);
      const before = JSON.stringify(phone);
      for (let i = 0; i < 20; i++) await input(ctx, chain, phone, `<presence to="${ERIN}/r${i}"/>`);
      assert.equal((await directedOf(phone)).length, 20);
      // A message-only batch serialises the state: the recipients are not in it.
      await input(ctx, chain, phone, `<message to="${BOB}" type="chat"><body>hi</body></message>`);
      const snapshot = JSON.stringify(phone);
      assert.ok(!snapshot.includes(ERIN), snapshot);
      assert.ok(snapshot.length <= before.length + 40, `${before}\n${snapshot}`);
    });

    it("remembers a recipient again when it gets presence after an unavailable in one batch", async () => {
      await ctx.createAccount(ERIN);
      const phone = await online(`${ALICE}/phone`);
      await input(ctx, chain, phone, `<presence to="${ERIN}"/>`);
      // One batch: the unavailable broadcast forgets the list once its deliveries are stored.
      const el = (xml: string) => {
        const parsed = parse(xml);
        parsed.attrs.xmlns = "jabber:client";
        return parsed.toString();
      };
      await handleFrame(ctx, chain, phone, el(`<presence type="unavailable"/>`));
      await handleFrame(ctx, chain, phone, el(`<presence/>`));
      await handleFrame(ctx, chain, phone, el(`<presence to="${ERIN}"/>`));
      await ctx.runAfterEffects();
      assert.deepEqual(await directedOf(phone), [ERIN]);
    });

    it("goes to the addressed JID only and is remembered for non-subscribers", async () => {
      await item(ALICE, BOB, "from");
      await item(BOB, ALICE, "to");
      const home = await online(`${ERIN}/home`);
      const work = await online(`${ERIN}/work`);
      const pc = await online(`${BOB}/pc`);
      const phone = await online(`${ALICE}/phone`);
      ctx.clearOutput();

      await input(ctx, chain, phone, `<presence to="${ERIN}/work"><show>xa</show></presence>`);
      await input(ctx, chain, phone, `<presence to="${ERIN}"/>`);
      await input(ctx, chain, phone, `<presence to="${BOB}/pc"/>`);
      assertXmlList(ctx.received(work), [
        `<presence to="${ERIN}/work" from="${ALICE}/phone"><show>xa</show></presence>`,
        `<presence to="${ERIN}" from="${ALICE}/phone"/>`,
      ]);
      assertXmlList(ctx.received(home), [`<presence to="${ERIN}" from="${ALICE}/phone"/>`]);
      assertXmlList(ctx.received(pc), [`<presence to="${BOB}/pc" from="${ALICE}/phone"/>`]);
      // bob is subscribed, so broadcasts reach him anyway.
      assert.deepEqual(await directedOf(phone), [`${ERIN}/work`, ERIN].sort());

      await input(ctx, chain, phone, `<presence type="unavailable" to="${ERIN}/work"/>`);
      assert.deepEqual(await directedOf(phone), [ERIN].sort());
      const last = ctx.received(work).at(-1);
      assert.ok(last);
      assertXml(last, `<presence type="unavailable" to="${ERIN}/work" from="${ALICE}/phone"/>`);
    });

    it("is silently dropped for an unknown user or an offline resource", async () => {
      const phone = await online(`${ALICE}/phone`);
      await ctx.createAccount(BOB);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence to="nobody@example.com"/>`);
      await input(ctx, chain, phone, `<presence to="${BOB}/gone"/>`);
      await input(ctx, chain, phone, `<presence to="example.com"/>`);
      assert.deepEqual(ctx.written, []);
      assert.deepEqual(await directedOf(phone), [`${BOB}/gone`].sort());
    });

    it("answers remote-server-not-found for another domain and jid-malformed for a bad JID", async () => {
      const phone = await online(`${ALICE}/phone`);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence to="someone@elsewhere.org" id="p1"/>`);
      await input(ctx, chain, phone, `<presence to="a@b@c" id="p2"/>`);
      await input(
        ctx,
        chain,
        phone,
        `<presence type="subscribe" to="someone@elsewhere.org" id="p3"/>`,
      );
      await input(ctx, chain, phone, `<presence type="bogus" id="p4"/>`);
      const error = (id: string, from: string, condition: string, type: string) =>
        `<presence type="error" id="${id}" to="${ALICE}/phone" from="${from}"><error type="${type}"><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`;
      const [p1, p2, p3, p4] = ctx.received(phone);
      assertXml(
        p1,
        error("p1", "someone@elsewhere.org", "remote-server-not-found", "cancel").replace(
          "</error>",
          `<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no server-to-server here</text></error>`,
        ),
      );
      assert.equal(p2.attrs.type, "error");
      assert.ok(
        p2.getChild("error")?.getChild("jid-malformed", "urn:ietf:params:xml:ns:xmpp-stanzas"),
      );
      assert.ok(
        p3
          .getChild("error")
          ?.getChild("remote-server-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"),
      );
      assert.ok(
        p4.getChild("error")?.getChild("bad-request", "urn:ietf:params:xml:ns:xmpp-stanzas"),
      );
      assert.equal(ctx.received(phone).length, 4);
      assert.deepEqual(await ctx.stores.rosters.get(ALICE), { version: "0", items: [] });
    });

    it("routes presence errors to a connected full JID only", async () => {
      const phone = await online(`${ALICE}/phone`);
      const pc = await online(`${BOB}/pc`);
      ctx.clearOutput();
      await input(
        ctx,
        chain,
        phone,
        `<presence type="error" to="${BOB}/pc"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`,
      );
      await input(ctx, chain, phone, `<presence type="error" to="${BOB}"/>`);
      assertXmlList(ctx.received(pc), [
        `<presence type="error" to="${BOB}/pc" from="${ALICE}/phone"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`,
      ]);
      assertXmlList(ctx.received(phone), []);
    });
  });
});
