// The handler chain (core/handler-chain.ts) and iq routing (core/route-iq.ts): RFC 6120 §8.2.3
// (an iq get/set has an id and exactly one payload and always gets exactly one response; a
// response nobody asked for is dropped), §10.3.3 (no `to` means the user's own account),
// RFC 6121 §8.5 (iqs to other local JIDs) and the xmpp.js iq/callee conventions
// (service-unavailable when no handler, internal-server-error when one throws).
import { strict as assert } from "node:assert";
import { Element } from "ltx";
import type { ConnState } from "../../services/session/core/connection.js";
import { HandlerChain } from "../../services/session/core/handler-chain.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { StanzaError } from "../../services/shared/xmpp-errors.js";
import { TestSessionContext, assertXmlList, input } from "../helpers/session-context.js";

const ALICE = "alice@example.com";
const BOB = "bob@example.com";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const TEST_NS = "urn:example:test";

function iqError(id: string, from: string, type: string, condition: string, text?: string): string {
  const textEl = text === undefined ? "" : `<text xmlns="${STANZAS}">${text}</text>`;
  return (
    `<iq type="error" id="${id}" to="${ALICE}/phone" from="${from}">` +
    `<error type="${type}"><${condition} xmlns="${STANZAS}"/>${textEl}</error></iq>`
  );
}

const ONE_PAYLOAD = "an iq get/set has exactly one payload";
const NEEDS_ID = "an iq needs an id";
const BAD_TYPE = "iq type must be get, set, result or error";

describe("handler chain and iq routing (RFC 6120 §8.2.3)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let phone: ConnState;
  let bobPc: ConnState;
  let calls: { to?: string; from?: string; payload: string }[];

  beforeEach(async () => {
    ctx = new TestSessionContext();
    chain = buildHandlerChain();
    calls = [];
    chain.get(TEST_NS, "echo", async (_ctx, _conn, iq, payload) => {
      calls.push({ to: iq.attrs.to, from: iq.attrs.from, payload: payload.toString() });
      return new Element("echo", { xmlns: TEST_NS }).t(payload.getText());
    });
    chain.set(TEST_NS, "boom", async () => {
      throw new Error("kaboom");
    });
    chain.set(TEST_NS, "refuse", async () => {
      throw new StanzaError("not-allowed", undefined, "no");
    });
    chain.get(TEST_NS, "shared", async () => undefined, { forOtherAccounts: true });
    phone = await ctx.connect(`${ALICE}/phone`);
    bobPc = await ctx.connect(`${BOB}/pc`);
  });

  describe("iq get/set to the server or the own account", () => {
    it("runs the handler registered for (type, namespace, name) and returns its payload", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="e1" to="example.com"><echo xmlns="${TEST_NS}">hi</echo></iq>`,
      );
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="e2"><echo xmlns="${TEST_NS}">no to</echo></iq>`,
      );
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="e3" to="${ALICE}"><echo xmlns="${TEST_NS}">own</echo></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="e1" from="example.com" to="${ALICE}/phone"><echo xmlns="${TEST_NS}">hi</echo></iq>`,
        `<iq type="result" id="e2" to="${ALICE}/phone"><echo xmlns="${TEST_NS}">no to</echo></iq>`,
        `<iq type="result" id="e3" from="${ALICE}" to="${ALICE}/phone"><echo xmlns="${TEST_NS}">own</echo></iq>`,
      ]);
      assert.deepEqual(
        calls.map((c) => [c.to, c.from]),
        [
          ["example.com", `${ALICE}/phone`],
          [undefined, `${ALICE}/phone`],
          [ALICE, `${ALICE}/phone`],
        ],
      );
    });

    it("answers an iq nobody handles with service-unavailable", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="u1" to="example.com"><query xmlns="urn:example:unknown"/></iq>`,
      );
      // Same name, other type: registered for get only.
      await input(ctx, chain, phone, `<iq type="set" id="u2"><echo xmlns="${TEST_NS}"/></iq>`);
      // Same name, other namespace.
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="u3"><echo xmlns="urn:example:other"/></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        iqError("u1", "example.com", "cancel", "service-unavailable"),
        iqError("u2", "example.com", "cancel", "service-unavailable"),
        iqError("u3", "example.com", "cancel", "service-unavailable"),
      ]);
      assert.deepEqual(calls, []);
    });

    it("answers an iq with two payloads, none, no id or an unknown type with bad-request", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="b1"><echo xmlns="${TEST_NS}"/><ping xmlns="urn:xmpp:ping"/></iq>`,
      );
      await input(ctx, chain, phone, `<iq type="get" id="b2"/>`);
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`,
      );
      await input(ctx, chain, phone, `<iq type="fetch" id="b4"><echo xmlns="${TEST_NS}"/></iq>`);
      await input(ctx, chain, phone, `<iq id="b5"><echo xmlns="${TEST_NS}"/></iq>`);
      assertXmlList(ctx.received(phone), [
        iqError("b1", "example.com", "modify", "bad-request", ONE_PAYLOAD),
        iqError("b2", "example.com", "modify", "bad-request", ONE_PAYLOAD),
        `<iq type="error" to="${ALICE}/phone" from="example.com"><error type="modify">` +
          `<bad-request xmlns="${STANZAS}"/><text xmlns="${STANZAS}">${NEEDS_ID}</text></error></iq>`,
        iqError("b4", "example.com", "modify", "bad-request", BAD_TYPE),
        iqError("b5", "example.com", "modify", "bad-request", BAD_TYPE),
      ]);
      assert.deepEqual(calls, []);
    });

    it("turns a plain Error from a handler into internal-server-error, without its message", async () => {
      await input(ctx, chain, phone, `<iq type="set" id="x1"><boom xmlns="${TEST_NS}"/></iq>`);
      assertXmlList(ctx.received(phone), [
        iqError("x1", "example.com", "cancel", "internal-server-error"),
      ]);
      assert.equal(ctx.receivedXml(phone)[0].includes("kaboom"), false);
      assert.deepEqual(ctx.closed, [], "a failing handler does not end the stream");
    });

    it("sends the StanzaError a handler throws", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="x2" to="example.com"><refuse xmlns="${TEST_NS}"/></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        iqError("x2", "example.com", "cancel", "not-allowed", "no"),
      ]);
    });

    it("drops a result or error nobody asked for (§8.2.3)", async () => {
      await input(ctx, chain, phone, `<iq type="result" id="r1"/>`);
      await input(
        ctx,
        chain,
        phone,
        `<iq type="result" id="r2" to="example.com"><echo xmlns="${TEST_NS}"/></iq>`,
      );
      await input(ctx, chain, phone, `<iq type="error" id="r3" to="example.com"/>`);
      await input(ctx, chain, phone, `<iq type="result" id="r4" to="${BOB}"/>`);
      await input(ctx, chain, phone, `<iq type="result" id="r5" to="${BOB}/gone"/>`);
      await input(ctx, chain, phone, `<iq type="result" id="r6" to="carol@elsewhere.example/x"/>`);
      assert.deepEqual(ctx.written, []);
      assert.deepEqual(calls, []);
    });

    it("takes the client's answer to the server's ping and sends nothing (XEP-0199)", async () => {
      phone.ping = { id: "srv-ping-1", sentAtMs: ctx.nowMs };
      await input(ctx, chain, phone, `<iq type="result" id="srv-ping-1" to="example.com"/>`);
      assert.equal(phone.ping, undefined);
      assert.deepEqual(ctx.written, []);
    });
  });

  describe("iqs to other JIDs (RFC 6121 §8.5)", () => {
    it("delivers an iq to an online full JID as is, stamped", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="f1" to="${BOB}/pc"><query xmlns="jabber:iq:version"/></iq>`,
      );
      assertXmlList(ctx.received(bobPc), [
        `<iq type="get" id="f1" to="${BOB}/pc" from="${ALICE}/phone"><query xmlns="jabber:iq:version"/></iq>`,
      ]);
      assertXmlList(ctx.received(phone), []);
      await input(ctx, chain, bobPc, `<iq type="result" id="f1" to="${ALICE}/phone"/>`);
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="f1" to="${ALICE}/phone" from="${BOB}/pc"/>`,
      ]);
    });

    it("answers an iq to a full JID that is not online with service-unavailable", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="f2" to="${BOB}/gone"><query xmlns="jabber:iq:version"/></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        iqError("f2", `${BOB}/gone`, "cancel", "service-unavailable"),
      ]);
    });

    it("answers an iq to another account's bare JID only with forOtherAccounts handlers", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="o1" to="${BOB}"><echo xmlns="${TEST_NS}"/></iq>`,
      );
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="o2" to="${BOB}"><shared xmlns="${TEST_NS}"/></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        iqError("o1", BOB, "cancel", "service-unavailable"),
        `<iq type="result" id="o2" from="${BOB}" to="${ALICE}/phone"/>`,
      ]);
      assertXmlList(ctx.received(bobPc), []);
    });

    it("answers an iq to another domain with remote-server-not-found", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<iq type="get" id="d1" to="carol@elsewhere.example"><ping xmlns="urn:xmpp:ping"/></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        iqError(
          "d1",
          "carol@elsewhere.example",
          "cancel",
          "remote-server-not-found",
          "no server-to-server here",
        ),
      ]);
    });
  });

  describe("message and presence handlers", () => {
    it("answers a message whose handler throws a plain Error with internal-server-error", async () => {
      const own = new HandlerChain();
      own.message(async () => {
        throw new Error("kaboom");
      });
      await input(ctx, own, phone, `<message to="${BOB}" id="m1"><body>hi</body></message>`);
      assertXmlList(ctx.received(phone), [
        `<message type="error" id="m1" to="${ALICE}/phone" from="${BOB}"><error type="cancel">` +
          `<internal-server-error xmlns="${STANZAS}"/></error></message>`,
      ]);
    });

    it("runs every message and presence handler in registration order", async () => {
      const own = new HandlerChain();
      const seen: string[] = [];
      own.message(async (_c, _conn, s) => void seen.push(`m1 ${s.attrs.id}`));
      own.message(async (_c, _conn, s) => void seen.push(`m2 ${s.attrs.id}`));
      own.presence(async (_c, _conn, s) => void seen.push(`p1 ${s.attrs.id}`));
      await input(ctx, own, phone, `<message id="a"/>`);
      await input(ctx, own, phone, `<presence id="b"/>`);
      assert.deepEqual(seen, ["m1 a", "m2 a", "p1 b"]);
    });

    it("reports registered iq handlers through hasIq (used by disco)", () => {
      assert.equal(chain.hasIq("get", TEST_NS, "echo"), true);
      assert.equal(chain.hasIq("set", TEST_NS, "echo"), false);
      assert.equal(chain.hasIq("get", "urn:xmpp:ping", "ping"), true);
      assert.equal(chain.hasIq("set", "urn:ietf:params:xml:ns:xmpp-session", "session"), true);
    });
  });
});
