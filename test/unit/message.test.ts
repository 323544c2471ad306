// RFC 6121 §8.5 (server rules for message stanzas to local JIDs), with offline storage
// (XEP-0160) and XEP-0203 delay stamps, through the real session core and the full handler chain.
import { strict as assert } from "node:assert";
import type { ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { seedItem } from "../helpers/roster-fixtures.js";
import { TestSessionContext, assertXmlList, input } from "../helpers/session-context.js";

const ALICE = "alice@example.com";
const BOB = "bob@example.com";
const CAROL = "carol@example.com";
const DAVE = "dave@example.com";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const STAMP = "2024-01-01T00:00:00.000Z";

function messageError(id: string, from: string, condition: string, text?: string): string {
  const textEl = text === undefined ? "" : `<text xmlns="${STANZAS}">${text}</text>`;
  return (
    `<message type="error" id="${id}" to="${ALICE}/phone" from="${from}">` +
    `<error type="cancel"><${condition} xmlns="${STANZAS}"/>${textEl}</error></message>`
  );
}

describe("messages (RFC 6121 §8.5)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let phone: ConnState;

  /** A bound connection that has sent initial presence with `priority` (none: never available). */
  async function online(fullJid: string, priority?: number): Promise<ConnState> {
    const conn = await ctx.connect(fullJid);
    if (priority !== undefined)
      await input(ctx, chain, conn, `<presence><priority>${priority}</priority></presence>`);
    return conn;
  }

  async function send(xml: string): Promise<void> {
    await input(ctx, chain, phone, xml);
  }

  beforeEach(async () => {
    ctx = new TestSessionContext();
    chain = buildHandlerChain();
    await ctx.createAccount(BOB);
    phone = await online(`${ALICE}/phone`, 0);
    ctx.clearOutput();
  });

  describe("to a full JID (§8.5.3)", () => {
    it("delivers to that resource when it is online, whatever its priority", async () => {
      const pc = await online(`${BOB}/pc`, 5);
      const low = await online(`${BOB}/low`, -3);
      ctx.clearOutput();
      await send(`<message to="${BOB}/low" type="chat" id="m1"><body>hi</body></message>`);
      assertXmlList(ctx.received(low), [
        `<message to="${BOB}/low" type="chat" id="m1" from="${ALICE}/phone"><body>hi</body></message>`,
      ]);
      assertXmlList(ctx.received(pc), []);
      assertXmlList(ctx.received(phone), []);
    });

    it("treats chat and normal to an offline resource as sent to the bare JID (§8.5.3.2.1)", async () => {
      const pc = await online(`${BOB}/pc`, 1);
      ctx.clearOutput();
      await send(`<message to="${BOB}/gone" type="chat" id="m2"><body>chat</body></message>`);
      await send(`<message to="${BOB}/gone" id="m3"><body>normal</body></message>`);
      assertXmlList(ctx.received(pc), [
        `<message to="${BOB}/gone" type="chat" id="m2" from="${ALICE}/phone"><body>chat</body></message>`,
        `<message to="${BOB}/gone" id="m3" from="${ALICE}/phone"><body>normal</body></message>`,
      ]);
      assertXmlList(ctx.received(phone), []);
    });

    it("stores chat to an offline resource when no resource is available", async () => {
      await send(`<message to="${BOB}/gone" type="chat" id="m4"><body>later</body></message>`);
      assertXmlList(ctx.received(phone), []);
      assert.deepEqual(await ctx.stores.offline.count(BOB), 1);
    });

    it("drops headline and error to an offline resource, and refuses groupchat", async () => {
      const pc = await online(`${BOB}/pc`, 1);
      ctx.clearOutput();
      await send(`<message to="${BOB}/gone" type="headline" id="h1"><body>news</body></message>`);
      await send(`<message to="${BOB}/gone" type="error" id="e1"/>`);
      await send(`<message to="${BOB}/gone" type="groupchat" id="g1"><body>room</body></message>`);
      assertXmlList(ctx.received(pc), []);
      assertXmlList(ctx.received(phone), [
        messageError("g1", `${BOB}/gone`, "service-unavailable"),
      ]);
      assert.equal(await ctx.stores.offline.count(BOB), 0);
    });
  });

  describe("to a bare JID with available resources (§8.5.2.1)", () => {
    it("delivers chat and normal to every resource of the highest non-negative priority", async () => {
      const a = await online(`${BOB}/a`, 5);
      const b = await online(`${BOB}/b`, 5);
      const c = await online(`${BOB}/c`, 1);
      const neg = await online(`${BOB}/neg`, -1);
      const idle = await online(`${BOB}/idle`); // bound, never available
      ctx.clearOutput();
      await send(`<message to="${BOB}" type="chat" id="m1"><body>chat</body></message>`);
      await send(`<message to="${BOB}" id="m2"><body>normal</body></message>`);
      const chat = `<message to="${BOB}" type="chat" id="m1" from="${ALICE}/phone"><body>chat</body></message>`;
      const normal = `<message to="${BOB}" id="m2" from="${ALICE}/phone"><body>normal</body></message>`;
      assertXmlList(ctx.received(a), [chat, normal]);
      assertXmlList(ctx.received(b), [chat, normal]);
      assertXmlList(ctx.received(c), []);
      assertXmlList(ctx.received(neg), []);
      assertXmlList(ctx.received(idle), []);
      assert.equal(await ctx.stores.offline.count(BOB), 0);
    });

    it("delivers to priority 0 over negative priorities", async () => {
      const zero = await online(`${BOB}/zero`, 0);
      const neg = await online(`${BOB}/neg`, -5);
      ctx.clearOutput();
      await send(`<message to="${BOB}" type="chat" id="m1"><body>hi</body></message>`);
      assert.equal(ctx.received(zero).length, 1);
      assertXmlList(ctx.received(neg), []);
    });

    it("delivers headline to every resource of non-negative priority", async () => {
      const a = await online(`${BOB}/a`, 5);
      const c = await online(`${BOB}/c`, 0);
      const neg = await online(`${BOB}/neg`, -1);
      ctx.clearOutput();
      await send(`<message to="${BOB}" type="headline" id="h1"><body>news</body></message>`);
      const headline = `<message to="${BOB}" type="headline" id="h1" from="${ALICE}/phone"><body>news</body></message>`;
      assertXmlList(ctx.received(a), [headline]);
      assertXmlList(ctx.received(c), [headline]);
      assertXmlList(ctx.received(neg), []);
    });

    it("refuses groupchat with service-unavailable and drops error", async () => {
      const a = await online(`${BOB}/a`, 5);
      ctx.clearOutput();
      await send(`<message to="${BOB}" type="groupchat" id="g1"><body>room</body></message>`);
      await send(`<message to="${BOB}" type="error" id="e1"/>`);
      assertXmlList(ctx.received(a), []);
      assertXmlList(ctx.received(phone), [messageError("g1", BOB, "service-unavailable")]);
    });

    it("sends a message without `to` to the sender's own bare JID (RFC 6120 §10.3.1)", async () => {
      const laptop = await online(`${ALICE}/laptop`, 0);
      const tablet = await online(`${ALICE}/tablet`, -1);
      ctx.clearOutput();
      await send(`<message type="chat" id="n1"><body>note to self</body></message>`);
      const note = `<message type="chat" id="n1" from="${ALICE}/phone"><body>note to self</body></message>`;
      assertXmlList(ctx.received(laptop), [note]);
      assertXmlList(ctx.received(phone), [note]);
      assertXmlList(ctx.received(tablet), []);
    });
  });

  describe("to a bare JID with no available resource (§8.5.2.2, XEP-0160)", () => {
    it("stores chat with an XEP-0203 delay and delivers it at the next initial presence", async () => {
      await send(`<message to="${BOB}" type="chat" id="o1"><body>later</body></message>`);
      ctx.nowMs += 60_000;
      await send(`<message to="${BOB}/gone" id="o2"><body>and this</body></message>`);
      assertXmlList(ctx.received(phone), []);
      assert.equal(await ctx.stores.offline.count(BOB), 2);

      const pc = await ctx.connect(`${BOB}/pc`);
      ctx.clearOutput();
      await input(ctx, chain, pc, `<presence/>`);
      assertXmlList(ctx.received(pc), [
        `<presence from="${BOB}/pc" to="${BOB}/pc"/>`,
        `<message to="${BOB}" type="chat" id="o1" from="${ALICE}/phone"><body>later</body>` +
          `<delay xmlns="urn:xmpp:delay" from="example.com" stamp="${STAMP}"/></message>`,
        `<message to="${BOB}/gone" id="o2" from="${ALICE}/phone"><body>and this</body>` +
          `<delay xmlns="urn:xmpp:delay" from="example.com" stamp="2024-01-01T00:01:00.000Z"/></message>`,
      ]);
      assert.equal(await ctx.stores.offline.count(BOB), 0);

      // Only once: a later presence update does not deliver again.
      ctx.clearOutput();
      await input(ctx, chain, pc, `<presence><show>away</show></presence>`);
      assertXmlList(ctx.received(pc), [
        `<presence from="${BOB}/pc" to="${BOB}/pc"><show>away</show></presence>`,
      ]);
    });

    it("stores a message when the only resources have negative priority", async () => {
      const neg = await online(`${BOB}/neg`, -1);
      ctx.clearOutput();
      await send(`<message to="${BOB}" type="chat" id="o3"><body>later</body></message>`);
      assertXmlList(ctx.received(neg), []);
      assertXmlList(ctx.received(phone), []);
      assert.equal(await ctx.stores.offline.count(BOB), 1);
    });

    // XEP-0160 §2: offline messages go to "the resource that has sent" non-negative available
    // presence; RFC 6121 §8.5.2.1.1 keeps bare-JID messages from negative-priority resources.
    it("does not deliver stored messages to an initial presence of negative priority", async () => {
      await send(`<message to="${BOB}" type="chat" id="o4"><body>later</body></message>`);
      const neg = await ctx.connect(`${BOB}/neg`);
      ctx.clearOutput();
      await input(ctx, chain, neg, `<presence><priority>-1</priority></presence>`);
      assertXmlList(ctx.received(neg), [
        `<presence from="${BOB}/neg" to="${BOB}/neg"><priority>-1</priority></presence>`,
      ]);
      assert.equal(await ctx.stores.offline.count(BOB), 1, "kept for a non-negative resource");
    });

    it("delivers stored messages once a negative priority is raised to non-negative (§8.5.2.1.1)", async () => {
      await send(`<message to="${BOB}" type="chat" id="o5"><body>later</body></message>`);
      const neg = await ctx.connect(`${BOB}/neg`);
      await input(ctx, chain, neg, `<presence><priority>-5</priority></presence>`);
      await input(ctx, chain, neg, `<presence><priority>-1</priority></presence>`);
      assert.equal(await ctx.stores.offline.count(BOB), 1, "still negative: kept");
      ctx.clearOutput();
      await input(ctx, chain, neg, `<presence><priority>0</priority></presence>`);
      assertXmlList(ctx.received(neg), [
        `<presence from="${BOB}/neg" to="${BOB}/neg"><priority>0</priority></presence>`,
        `<message to="${BOB}" type="chat" id="o5" from="${ALICE}/phone"><body>later</body>` +
          `<delay xmlns="urn:xmpp:delay" from="example.com" stamp="${STAMP}"/></message>`,
      ]);
      assert.equal(await ctx.stores.offline.count(BOB), 0);
    });

    it("drops headline and error, and refuses groupchat, instead of storing them", async () => {
      await send(`<message to="${BOB}" type="headline" id="h1"><body>news</body></message>`);
      await send(`<message to="${BOB}" type="error" id="e1"/>`);
      await send(`<message to="${BOB}" type="groupchat" id="g1"><body>room</body></message>`);
      assertXmlList(ctx.received(phone), [messageError("g1", BOB, "service-unavailable")]);
      assert.equal(await ctx.stores.offline.count(BOB), 0);
    });

    it("refuses with service-unavailable once config.offlineMaxMessages are stored", async () => {
      ctx = new TestSessionContext({ config: { offlineMaxMessages: 2 } });
      await ctx.createAccount(BOB);
      phone = await online(`${ALICE}/phone`, 0);
      ctx.clearOutput();
      for (const id of ["f1", "f2", "f3"])
        await send(`<message to="${BOB}" type="chat" id="${id}"><body>${id}</body></message>`);
      assertXmlList(ctx.received(phone), [
        messageError("f3", BOB, "service-unavailable", "offline storage is full"),
      ]);
      assert.equal(await ctx.stores.offline.count(BOB), 2);
    });

    it("refuses with service-unavailable once a sender has offlineMaxMessagesPerSender stored", async () => {
      ctx = new TestSessionContext({ config: { offlineMaxMessagesPerSender: 2 } });
      await ctx.createAccount(BOB);
      phone = await online(`${ALICE}/phone`, 0);
      const carol = await online(`${CAROL}/pc`, 0);
      ctx.clearOutput();
      for (const id of ["s1", "s2", "s3"])
        await send(`<message to="${BOB}" type="chat" id="${id}"><body>${id}</body></message>`);
      assertXmlList(ctx.received(phone), [
        messageError(
          "s3",
          BOB,
          "service-unavailable",
          "too many of your messages are already waiting for this user",
        ),
      ]);
      // Another sender still gets through, and so does the user writing to itself.
      await input(ctx, chain, carol, `<message to="${BOB}" type="chat"><body>c</body></message>`);
      assertXmlList(ctx.received(carol), []);
      assert.equal(await ctx.stores.offline.count(BOB), 3);
      // bob's own bound but unavailable resource writing to bob counts against no sender.
      const idle = await online(`${BOB}/idle`);
      for (const id of ["o1", "o2", "o3"])
        await input(
          ctx,
          chain,
          idle,
          `<message to="${BOB}" type="chat"><body>${id}</body></message>`,
        );
      assertXmlList(ctx.received(idle), []);
      assert.equal(await ctx.stores.offline.count(BOB), 6);
    });

    it("stores only messages from contacts with a subscription when offlineFromContactsOnly", async () => {
      ctx = new TestSessionContext({ config: { offlineFromContactsOnly: true } });
      await ctx.createAccount(BOB);
      phone = await online(`${ALICE}/phone`, 0);
      const carol = await online(`${CAROL}/pc`, 0);
      const dave = await online(`${DAVE}/pc`, 0);
      await seedItem(ctx, BOB, { jid: CAROL, subscription: "from", groups: [] });
      await seedItem(ctx, BOB, { jid: DAVE, subscription: "none", groups: [] });
      ctx.clearOutput();
      await send(`<message to="${BOB}" type="chat" id="x1"><body>stranger</body></message>`);
      await input(
        ctx,
        chain,
        dave,
        `<message to="${BOB}" type="chat" id="x2"><body>d</body></message>`,
      );
      await input(
        ctx,
        chain,
        carol,
        `<message to="${BOB}" type="chat" id="x3"><body>c</body></message>`,
      );
      const refused = (id: string, to: string) =>
        messageError(
          id,
          BOB,
          "service-unavailable",
          "offline messages are accepted only from contacts",
        ).replace(`to="${ALICE}/phone"`, `to="${to}"`);
      assertXmlList(ctx.received(phone), [refused("x1", `${ALICE}/phone`)]);
      assertXmlList(ctx.received(dave), [refused("x2", `${DAVE}/pc`)]);
      assertXmlList(ctx.received(carol), []);
      assert.deepEqual(
        (await ctx.stores.offline.peek(BOB)).map((x) => x.includes(">c</body>")),
        [true],
      );
    });

    // XEP-0160 §3 (and XEP-0085 §5.8): chat-state-only messages are not stored offline; nor is
    // any other chat or normal message without a body.
    it("drops chat and normal messages without a body instead of storing them", async () => {
      const CHATSTATES = "http://jabber.org/protocol/chatstates";
      await send(
        `<message to="${BOB}" type="chat" id="c1"><composing xmlns="${CHATSTATES}"/></message>`,
      );
      await send(
        `<message to="${BOB}/gone" type="chat" id="c2"><active xmlns="${CHATSTATES}"/></message>`,
      );
      await send(
        `<message to="${BOB}" id="r1"><received xmlns="urn:xmpp:receipts" id="m1"/></message>`,
      );
      await send(`<message to="${BOB}" type="chat" id="c3"/>`);
      await send(
        `<message to="${BOB}" type="chat" id="c4"><body xmlns="urn:example:not-a-body">x</body></message>`,
      );
      assertXmlList(ctx.received(phone), [], "no error for a dropped message");
      assert.equal(await ctx.stores.offline.count(BOB), 0);
    });

    it("stores a message with a body whatever else it carries", async () => {
      const CHATSTATES = "http://jabber.org/protocol/chatstates";
      await send(
        `<message to="${BOB}" type="chat" id="c1"><active xmlns="${CHATSTATES}"/><body>hi</body></message>`,
      );
      await send(`<message to="${BOB}" type="chat" id="c2"><body/></message>`);
      assertXmlList(ctx.received(phone), []);
      assert.equal(await ctx.stores.offline.count(BOB), 2);
    });

    it("delivers messages without a body to an available resource as before", async () => {
      const pc = await online(`${BOB}/pc`, 0);
      ctx.clearOutput();
      const CHATSTATES = "http://jabber.org/protocol/chatstates";
      await send(
        `<message to="${BOB}" type="chat" id="c1"><composing xmlns="${CHATSTATES}"/></message>`,
      );
      assertXmlList(ctx.received(pc), [
        `<message to="${BOB}" type="chat" id="c1" from="${ALICE}/phone"><composing xmlns="${CHATSTATES}"/></message>`,
      ]);
    });

    it("refuses with service-unavailable once config.offlineMaxBytes would be passed", async () => {
      // A stored stanza here is about 210 bytes of envelope and delay plus its body: b1 takes
      // about 710 of the 1100, so b2 does not fit but b3 (about 215) does.
      ctx = new TestSessionContext({ config: { offlineMaxBytes: 1100 } });
      await ctx.createAccount(BOB);
      phone = await online(`${ALICE}/phone`, 0);
      ctx.clearOutput();
      const big = "x".repeat(500);
      await send(`<message to="${BOB}" type="chat" id="b1"><body>${big}</body></message>`);
      await send(`<message to="${BOB}" type="chat" id="b2"><body>${big}</body></message>`);
      await send(`<message to="${BOB}" type="chat" id="b3"><body>small</body></message>`);
      assertXmlList(ctx.received(phone), [
        messageError("b2", BOB, "service-unavailable", "offline storage is full"),
      ]);
      assert.equal(await ctx.stores.offline.count(BOB), 2, "b1 and b3 fit, b2 does not");

      // Delivering the queue frees its bytes.
      const pc = await ctx.connect(`${BOB}/pc`);
      await input(ctx, chain, pc, `<presence/>`);
      await ctx.disconnect(chain, pc);
      ctx.clearOutput();
      await send(`<message to="${BOB}" type="chat" id="b4"><body>${big}</body></message>`);
      assertXmlList(ctx.received(phone), []);
      assert.equal(await ctx.stores.offline.count(BOB), 1);
    });

    it("refuses a message to an account that does not exist with service-unavailable (§8.5.1)", async () => {
      await send(`<message to="nobody@example.com" type="chat" id="x1"><body>hi</body></message>`);
      await send(
        `<message to="nobody@example.com/res" type="chat" id="x2"><body>hi</body></message>`,
      );
      assertXmlList(ctx.received(phone), [
        messageError("x1", "nobody@example.com", "service-unavailable"),
        messageError("x2", "nobody@example.com/res", "service-unavailable"),
      ]);
      assert.equal(await ctx.stores.offline.count("nobody@example.com"), 0);
    });
  });

  describe("other addresses", () => {
    it("refuses another domain with remote-server-not-found", async () => {
      await send(
        `<message to="carol@elsewhere.example" type="chat" id="r1"><body>hi</body></message>`,
      );
      assertXmlList(ctx.received(phone), [
        messageError(
          "r1",
          "carol@elsewhere.example",
          "remote-server-not-found",
          "no server-to-server here",
        ),
      ]);
    });

    it("refuses a chat message to the server itself with service-unavailable", async () => {
      await send(`<message to="example.com" type="chat" id="s1"><body>hi</body></message>`);
      await send(`<message to="example.com" type="headline" id="s2"><body>hi</body></message>`);
      assertXmlList(ctx.received(phone), [
        messageError("s1", "example.com", "service-unavailable"),
      ]);
    });
  });
});
