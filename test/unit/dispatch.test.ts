// The per-frame entry point (core/dispatch.ts) for bound connections: RFC 6120 §8.1.2.1 (the
// server stamps `from`), §8.1.1 and RFC 7622 (`to` is prepared, a malformed one gets
// jid-malformed), §8.3.1 (an error is never answered with an error), §4.9.3 (stream errors for
// what is not a stanza) and §11.1 (restricted XML).
import { strict as assert } from "node:assert";
import type { ConnState } from "../../services/session/core/connection.js";
import { handleFrame } from "../../services/session/core/dispatch.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { TestSessionContext, assertXmlList, input } from "../helpers/session-context.js";

const ALICE = "alice@example.com";
const BOB = "bob@example.com";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

describe("dispatch of a bound connection's frames (RFC 6120 §8)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let phone: ConnState;
  let bobPc: ConnState;

  beforeEach(async () => {
    ctx = new TestSessionContext();
    chain = buildHandlerChain();
    phone = await ctx.connect(`${ALICE}/phone`);
    bobPc = await ctx.connect(`${BOB}/pc`);
  });

  describe("addressing", () => {
    it("replaces a forged `from` with the sender's full JID (§8.1.2.1)", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<message from="mallory@example.com/x" to="${BOB}/pc" type="chat" id="m1"><body>hi</body></message>`,
      );
      assertXmlList(ctx.received(bobPc), [
        `<message from="${ALICE}/phone" to="${BOB}/pc" type="chat" id="m1"><body>hi</body></message>`,
      ]);
      assertXmlList(ctx.received(phone), []);
    });

    it("stamps `from` on an iq the server answers, and addresses the reply to it", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq from="${BOB}/pc" type="get" id="p1" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="p1" from="example.com" to="${ALICE}/phone"/>`,
      ]);
      assertXmlList(ctx.received(bobPc), []);
    });

    it("prepares `to` (RFC 7622) before routing", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<message to="BOB@Example.COM./pc" type="chat" id="m2"><body>hi</body></message>`,
      );
      assertXmlList(ctx.received(bobPc), [
        `<message from="${ALICE}/phone" to="${BOB}/pc" type="chat" id="m2"><body>hi</body></message>`,
      ]);
    });

    it("answers a malformed `to` with jid-malformed from the server and routes nothing", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<message to="bob@@example.com" id="m3"><body>hi</body></message>`,
      );
      await input(ctx, chain, phone, `<presence to="@example.com" id="p3"/>`);
      await input(
        ctx,
        chain,
        phone,
        `<iq to="bob@example.com/" type="get" id="i3"><ping xmlns="urn:xmpp:ping"/></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        `<message type="error" id="m3" to="${ALICE}/phone" from="example.com"><error type="modify">` +
          `<jid-malformed xmlns="${STANZAS}"/><text xmlns="${STANZAS}">malformed domainpart</text></error></message>`,
        `<presence type="error" id="p3" to="${ALICE}/phone" from="example.com"><error type="modify">` +
          `<jid-malformed xmlns="${STANZAS}"/><text xmlns="${STANZAS}">empty localpart before '@'</text></error></presence>`,
        `<iq type="error" id="i3" to="${ALICE}/phone" from="example.com"><error type="modify">` +
          `<jid-malformed xmlns="${STANZAS}"/><text xmlns="${STANZAS}">empty resourcepart after '/'</text></error></iq>`,
      ]);
      assertXmlList(ctx.received(bobPc), []);
    });

    it("does not answer an error stanza with a malformed `to` (§8.3.1)", async () => {
      await input(ctx, chain, phone, `<message type="error" to="bob@@example.com" id="e1"/>`);
      await input(ctx, chain, phone, `<presence type="error" to="@example.com" id="e2"/>`);
      await input(ctx, chain, phone, `<iq type="error" to="bob@@example.com" id="e3"/>`);
      assertXmlList(ctx.received(phone), []);
    });

    // §8.2.3 rule 4: an IQ response (result or error) is never answered with a further IQ
    // response, whatever is wrong with it.
    it("does not answer an iq result with a malformed `to`", async () => {
      await input(ctx, chain, phone, `<iq type="result" to="bob@@example.com" id="r1"/>`);
      assertXmlList(ctx.received(phone), []);
    });
  });

  // §8.2.3: checked before routing, so a malformed iq to a full JID is never relayed.
  describe("iq semantics (§8.2.3)", () => {
    const PING = `<ping xmlns="urn:xmpp:ping"/>`;
    const badRequest = (id: string | undefined, text: string, from = `${BOB}/pc`) =>
      `<iq type="error"${id ? ` id="${id}"` : ""} to="${ALICE}/phone" from="${from}"><error type="modify">` +
      `<bad-request xmlns="${STANZAS}"/><text xmlns="${STANZAS}">${text}</text></error></iq>`;

    it("answers a malformed get/set to a full JID with bad-request and relays nothing", async () => {
      await input(ctx, chain, phone, `<iq type="get" to="${BOB}/pc">${PING}</iq>`);
      await input(ctx, chain, phone, `<iq type="probe" id="t1" to="${BOB}/pc">${PING}</iq>`);
      await input(ctx, chain, phone, `<iq id="t2" to="${BOB}/pc">${PING}</iq>`);
      await input(ctx, chain, phone, `<iq type="set" id="c0" to="${BOB}/pc"/>`);
      await input(ctx, chain, phone, `<iq type="get" id="c2" to="${BOB}/pc">${PING}${PING}</iq>`);
      assertXmlList(ctx.received(phone), [
        badRequest(undefined, "an iq needs an id"),
        badRequest("t1", "iq type must be get, set, result or error"),
        badRequest("t2", "iq type must be get, set, result or error"),
        badRequest("c0", "an iq get/set has exactly one payload"),
        badRequest("c2", "an iq get/set has exactly one payload"),
      ]);
      assertXmlList(ctx.received(bobPc), []);
    });

    it("answers the same for an iq to the server or to an account", async () => {
      await input(ctx, chain, phone, `<iq type="get" to="example.com">${PING}</iq>`);
      await input(ctx, chain, phone, `<iq type="bogus" id="b1" to="${BOB}">${PING}</iq>`);
      assertXmlList(ctx.received(phone), [
        badRequest(undefined, "an iq needs an id", "example.com"),
        badRequest("b1", "iq type must be get, set, result or error", BOB),
      ]);
    });

    it("drops a result without id or with two payloads, and an error without id", async () => {
      await input(ctx, chain, phone, `<iq type="result" to="${BOB}/pc">${PING}</iq>`);
      await input(
        ctx,
        chain,
        phone,
        `<iq type="result" id="r2" to="${BOB}/pc">${PING}${PING}</iq>`,
      );
      await input(ctx, chain, phone, `<iq type="error" to="${BOB}/pc"/>`);
      assertXmlList(ctx.received(phone), []);
      assertXmlList(ctx.received(bobPc), []);
    });

    it("relays a well-formed get and its result between full JIDs", async () => {
      await input(ctx, chain, phone, `<iq type="get" id="g1" to="${BOB}/pc">${PING}</iq>`);
      await input(ctx, chain, bobPc, `<iq type="result" id="g1" to="${ALICE}/phone"/>`);
      assertXmlList(ctx.received(bobPc), [
        `<iq type="get" id="g1" to="${BOB}/pc" from="${ALICE}/phone">${PING}</iq>`,
      ]);
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="g1" to="${ALICE}/phone" from="${BOB}/pc"/>`,
      ]);
    });
  });

  describe("error stanzas (§8.3.1)", () => {
    it("never answers an error stanza with an error, whatever fails while routing it", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<message type="error" to="carol@elsewhere.example" id="e1"><error type="cancel"><gone xmlns="${STANZAS}"/></error></message>`,
      );
      await input(ctx, chain, phone, `<message type="error" to="example.com" id="e2"/>`);
      await input(ctx, chain, phone, `<iq type="error" to="carol@elsewhere.example" id="e3"/>`);
      await input(ctx, chain, phone, `<iq type="error" to="${BOB}/gone" id="e4"/>`);
      await input(
        ctx,
        chain,
        phone,
        `<presence type="error" to="carol@elsewhere.example" id="e5"/>`,
      );
      assertXmlList(ctx.received(phone), []);
      assertXmlList(ctx.received(bobPc), []);
    });

    it("answers the same stanzas with an error when they are not errors", async () => {
      await input(ctx, chain, phone, `<message type="chat" to="carol@elsewhere.example" id="c1"/>`);
      assertXmlList(ctx.received(phone), [
        `<message type="error" id="c1" to="${ALICE}/phone" from="carol@elsewhere.example"><error type="cancel">` +
          `<remote-server-not-found xmlns="${STANZAS}"/><text xmlns="${STANZAS}">no server-to-server here</text></error></message>`,
      ]);
    });

    it("delivers an error stanza to the online resource it is addressed to", async () => {
      await input(ctx, chain, phone, `<iq type="error" to="${BOB}/pc" id="x1"/>`);
      assertXmlList(ctx.received(bobPc), [
        `<iq type="error" to="${BOB}/pc" id="x1" from="${ALICE}/phone"/>`,
      ]);
    });
  });

  describe("stream errors", () => {
    it("closes with unsupported-stanza-type for an element that is not a stanza", async () => {
      await input(ctx, chain, phone, `<foo/>`);
      assertXmlList(ctx.received(phone), []);
      assert.deepEqual(
        ctx.closed.map((c) => [c.connId, c.condition]),
        [[phone.connId, "unsupported-stanza-type"]],
      );
      assert.equal(phone.stage, "closed");
    });

    it("closes with unsupported-stanza-type for SASL after binding", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">=</auth>`,
      );
      assert.deepEqual(
        ctx.closed.map((c) => c.condition),
        ["unsupported-stanza-type"],
      );
    });

    it("closes with invalid-namespace for a stanza outside jabber:client", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<message xmlns="jabber:server" to="${BOB}/pc"><body>hi</body></message>`,
      );
      assertXmlList(ctx.received(bobPc), []);
      assert.deepEqual(
        ctx.closed.map((c) => [c.connId, c.condition]),
        [[phone.connId, "invalid-namespace"]],
      );
    });

    it("closes with restricted-xml for a comment, a processing instruction or a DTD (§11.1)", async () => {
      const frames = [
        `<message xmlns="jabber:client" to="${BOB}/pc"><!-- hi --><body>hi</body></message>`,
        `<?xml version="1.0"?><message xmlns="jabber:client" to="${BOB}/pc"/>`,
        `<!DOCTYPE message><message xmlns="jabber:client" to="${BOB}/pc"/>`,
        `<message xmlns="jabber:client" to="${BOB}/pc"><body>&custom;</body></message>`,
      ];
      for (const frame of frames) {
        const conn = await ctx.connect(`${ALICE}/r${frames.indexOf(frame)}`);
        await handleFrame(ctx, chain, conn, frame);
        assert.equal(conn.stage, "closed", frame);
        assert.deepEqual(ctx.closed.at(-1), {
          connId: conn.connId,
          condition: "restricted-xml",
          text: ctx.closed.at(-1)?.text,
        });
      }
      assert.equal(ctx.closed.length, frames.length);
      assertXmlList(ctx.received(bobPc), []);
    });

    it("closes with not-well-formed for a frame that is not XML", async () => {
      await handleFrame(ctx, chain, phone, `<message xmlns="jabber:client"><body>hi</message>`);
      assert.deepEqual(
        ctx.closed.map((c) => c.condition),
        ["not-well-formed"],
      );
    });

    it("closes with policy-violation for a frame over maxStanzaBytes", async () => {
      ctx = new TestSessionContext({ config: { maxStanzaBytes: 10000 } });
      const conn = await ctx.connect(`${ALICE}/phone`);
      await handleFrame(
        ctx,
        chain,
        conn,
        `<message xmlns="jabber:client" to="${BOB}"><body>${"x".repeat(10000)}</body></message>`,
      );
      assert.deepEqual(
        ctx.closed.map((c) => c.condition),
        ["policy-violation"],
      );
    });
  });

  it("ignores a whitespace-only frame (RFC 6120 §4.6.1 keepalive)", async () => {
    await handleFrame(ctx, chain, phone, " \r\n\t ");
    await handleFrame(ctx, chain, phone, "");
    assert.deepEqual(ctx.written, []);
    assert.deepEqual(ctx.closed, []);
    assert.equal(phone.stage, "bound");
  });

  it("processes nothing after the connection is closed", async () => {
    await input(ctx, chain, phone, `<foo/>`);
    await input(ctx, chain, phone, `<message to="${BOB}/pc"><body>late</body></message>`);
    assertXmlList(ctx.received(bobPc), []);
    assert.equal(ctx.closed.length, 1);
  });
});
