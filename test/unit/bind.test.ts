// RFC 6120 §7 (resource binding) and the RFC 3921 legacy session iq (RFC 6121 Appendix E),
// through the real session core (handleFrame) with memory stores.
import { strict as assert } from "node:assert";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { TestSessionContext, assertXml, assertXmlList, input } from "../helpers/session-context.js";

const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const BIND = "urn:ietf:params:xml:ns:xmpp-bind";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const ALICE = "alice@example.com";

const bindIq = (id: string, resource?: string) =>
  `<iq type="set" id="${id}"><bind xmlns="${BIND}">${
    resource === undefined ? "" : `<resource>${resource}</resource>`
  }</bind></iq>`;

const bindResult = (id: string, jid: string) =>
  `<iq type="result" id="${id}"><bind xmlns="${BIND}"><jid>${jid}</jid></bind></iq>`;

const badRequest = (id: string | undefined, text: string) =>
  `<iq type="error"${id === undefined ? "" : ` id="${id}"`} from="example.com">` +
  `<error type="modify"><bad-request xmlns="${STANZAS}"/><text xmlns="${STANZAS}">${text}</text></error></iq>`;

describe("resource binding (RFC 6120 §7)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let serial = 0;

  /** A connection as after SASL and the stream restart: ready to bind. */
  function restarted(bareJid = ALICE): ConnState {
    const conn = newConnState(`edge-test.0.b${++serial}`, "edge-test", 0, ctx.nowMs);
    conn.stage = "restarted";
    conn.streamId = `stream-b${serial}`;
    conn.bareJid = bareJid;
    return conn;
  }

  beforeEach(async () => {
    ctx = new TestSessionContext();
    chain = buildHandlerChain();
    await ctx.createAccount(ALICE);
  });

  it("generates a resource when the client asks for none (§7.6)", async () => {
    const conn = restarted();
    await input(ctx, chain, conn, bindIq("b1"));
    const [reply] = ctx.received(conn);
    const jid = reply?.getChild("bind", BIND)?.getChildText("jid") ?? "";
    assert.match(jid, /^alice@example\.com\/mp-[0-9a-f]{12}$/);
    assertXml(reply, bindResult("b1", jid));
    assert.equal(conn.stage, "bound");
    assert.equal(`${conn.bareJid}/${conn.resource}`, jid);
    const routes = await ctx.stores.routes.list(ALICE);
    assert.deepEqual(
      routes.map((r) => [r.resource, r.connId]),
      [[conn.resource, conn.connId]],
    );

    const other = restarted();
    await input(ctx, chain, other, bindIq("b2", "  "));
    assert.match(other.resource ?? "", /^mp-[0-9a-f]{12}$/, "blank counts as none");
    assert.notEqual(other.resource, conn.resource, "each generated resource is new");
    assert.deepEqual(ctx.kicked, []);
  });

  it("binds the requested resource", async () => {
    const conn = restarted();
    await input(ctx, chain, conn, bindIq("b1", "phone"));
    assertXmlList(ctx.received(conn), [bindResult("b1", `${ALICE}/phone`)]);
    assert.equal(conn.resource, "phone");
    assert.equal(conn.stage, "bound");
    const [route] = await ctx.stores.routes.list(ALICE);
    assert.equal(route?.resource, "phone");
    assert.equal(route?.connId, conn.connId);
    assert.deepEqual(ctx.kicked, []);
  });

  it("keeps a resource holding '@' and '/' (RFC 7622 §3.1)", async () => {
    const conn = restarted();
    await input(ctx, chain, conn, bindIq("b1", "desk/top@home"));
    assertXmlList(ctx.received(conn), [bindResult("b1", `${ALICE}/desk/top@home`)]);
  });

  it("takes a resource over from the connection holding it, kicked with conflict (§7.7.2.2)", async () => {
    const old = restarted();
    await input(ctx, chain, old, bindIq("b1", "phone"));
    const newer = restarted();
    await input(ctx, chain, newer, bindIq("b2", "phone"));
    assertXmlList(ctx.received(newer), [bindResult("b2", `${ALICE}/phone`)]);
    assert.deepEqual(ctx.kicked, [{ connId: old.connId, condition: "conflict" }]);
    const routes = await ctx.stores.routes.list(ALICE);
    assert.deepEqual(
      routes.map((r) => [r.resource, r.connId]),
      [["phone", newer.connId]],
    );
  });

  it("leaves the other resources of the account alone", async () => {
    const laptop = restarted();
    await input(ctx, chain, laptop, bindIq("b1", "laptop"));
    const phone = restarted();
    await input(ctx, chain, phone, bindIq("b2", "phone"));
    assert.deepEqual(ctx.kicked, []);
    const routes = await ctx.stores.routes.list(ALICE);
    assert.deepEqual(routes.map((r) => r.resource).sort(), ["laptop", "phone"]);
  });

  describe("resource limit (§7.6.2.1)", () => {
    const resourceConstraint = (id: string) =>
      `<iq type="error" id="${id}" from="example.com">` +
      `<error type="wait"><resource-constraint xmlns="${STANZAS}"/>` +
      `<text xmlns="${STANZAS}">too many resources are bound</text></error></iq>`;

    beforeEach(() => {
      ctx = new TestSessionContext({ config: { maxResourcesPerUser: 2 } });
    });

    it("refuses a new resource past config.maxResourcesPerUser with resource-constraint, stream open", async () => {
      await input(ctx, chain, restarted(), bindIq("b1", "phone"));
      await input(ctx, chain, restarted(), bindIq("b2", "laptop"));
      const third = restarted();
      await input(ctx, chain, third, bindIq("b3", "tablet"));
      await input(ctx, chain, third, bindIq("b4"));
      assertXmlList(ctx.received(third), [resourceConstraint("b3"), resourceConstraint("b4")]);
      assert.equal(third.stage, "restarted");
      assert.equal(third.resource, undefined);
      assert.deepEqual(ctx.closed, [], "the client may try again");
      assert.deepEqual(ctx.kicked, []);
      const routes = await ctx.stores.routes.list(ALICE);
      assert.deepEqual(routes.map((r) => r.resource).sort(), ["laptop", "phone"]);
    });

    it("still lets a bound resource be taken over at the limit (§7.7.2.2)", async () => {
      const phone = restarted();
      await input(ctx, chain, phone, bindIq("b1", "phone"));
      await input(ctx, chain, restarted(), bindIq("b2", "laptop"));
      const newer = restarted();
      await input(ctx, chain, newer, bindIq("b3", "tablet"));
      await input(ctx, chain, newer, bindIq("b4", "phone"));
      assertXmlList(ctx.received(newer), [
        resourceConstraint("b3"),
        bindResult("b4", `${ALICE}/phone`),
      ]);
      assert.equal(newer.stage, "bound");
      assert.deepEqual(ctx.kicked, [{ connId: phone.connId, condition: "conflict" }]);
    });

    it("counts each account's resources apart", async () => {
      await input(ctx, chain, restarted(), bindIq("b1", "phone"));
      await input(ctx, chain, restarted(), bindIq("b2", "laptop"));
      const bob = restarted("bob@example.com");
      await input(ctx, chain, bob, bindIq("b3", "phone"));
      assertXmlList(ctx.received(bob), [bindResult("b3", "bob@example.com/phone")]);
    });
  });

  it("refuses a resource with a control character with bad-request (§7.7.2.1)", async () => {
    const conn = restarted();
    await input(ctx, chain, conn, bindIq("b1", "a&#9;b"));
    assertXmlList(ctx.received(conn), [badRequest("b1", "that resource is not allowed")]);
    assert.equal(conn.stage, "restarted");
    assert.equal(conn.resource, undefined);
    assert.deepEqual(await ctx.stores.routes.list(ALICE), []);
    assert.deepEqual(ctx.closed, [], "the client may try again");

    await input(ctx, chain, conn, bindIq("b2", "phone"));
    assert.equal(conn.stage, "bound");
  });

  it("refuses a resource with a bidi control or a lone joiner with bad-request (RFC 7622 §3.4)", async () => {
    const conn = restarted();
    // U+202E RIGHT-TO-LEFT OVERRIDE, U+200D ZERO WIDTH JOINER, U+FEFF, U+2028 LINE SEPARATOR
    const resources = ["evil\u202egnp.exe", "\u200d", "ph\u200cone", "ph\ufeffone", "a\u2028b"];
    for (const [i, resource] of resources.entries())
      await input(ctx, chain, conn, bindIq(`b${i}`, resource));
    assertXmlList(
      ctx.received(conn),
      resources.map((_, i) => badRequest(`b${i}`, "that resource is not allowed")),
    );
    assert.equal(conn.stage, "restarted");
    assert.deepEqual(await ctx.stores.routes.list(ALICE), []);
  });

  it("maps non-ASCII spaces in a resource to U+0020 (OpaqueString, RFC 8265 §4.2)", async () => {
    const conn = restarted();
    await input(ctx, chain, conn, bindIq("b1", "my\u3000phone"));
    assert.equal(conn.resource, "my phone");
  });

  it("refuses a resource longer than 1023 bytes with bad-request", async () => {
    const conn = restarted();
    await input(ctx, chain, conn, bindIq("b1", "r".repeat(1024)));
    assertXmlList(ctx.received(conn), [badRequest("b1", "that resource is not allowed")]);
    assert.equal(conn.stage, "restarted");
  });

  it("refuses a bind that is not an iq set with an id with bad-request", async () => {
    const conn = restarted();
    await input(ctx, chain, conn, `<iq type="get" id="g1"><bind xmlns="${BIND}"/></iq>`);
    await input(ctx, chain, conn, `<iq type="set"><bind xmlns="${BIND}"/></iq>`);
    assertXmlList(ctx.received(conn), [
      badRequest("g1", "bind is an iq set with an id"),
      badRequest(undefined, "bind is an iq set with an id"),
    ]);
    assert.equal(conn.stage, "restarted");
  });

  it("refuses any other stanza before binding with a not-authorized stream error", async () => {
    const conn = restarted();
    await input(ctx, chain, conn, `<message to="bob@example.com"><body>hi</body></message>`);
    assert.deepEqual(ctx.receivedXml(conn), []);
    assert.deepEqual(
      ctx.closed.map((c) => [c.connId, c.condition]),
      [[conn.connId, "not-authorized"]],
    );
  });

  it("binds after the whole negotiation: open, SASL PLAIN, restart, bind", async () => {
    ctx = new TestSessionContext({ config: { tlsTerminatedByProxy: true } });
    await ctx.stores.accounts.create("bob@example.com", createAccount("pw", 4096));
    const conn = newConnState("edge-test.0.full", "edge-test", 0, ctx.nowMs);
    const open = `<open xmlns="${FRAMING}" to="example.com" version="1.0"/>`;
    await input(ctx, chain, conn, open);
    await input(
      ctx,
      chain,
      conn,
      `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from("\0bob\0pw").toString("base64")}</auth>`,
    );
    await input(ctx, chain, conn, open);
    ctx.clearOutput();
    await input(ctx, chain, conn, bindIq("b1", "pc"));
    assertXmlList(ctx.received(conn), [bindResult("b1", "bob@example.com/pc")]);
    assert.equal(conn.stage, "bound");
  });

  describe("legacy session establishment (RFC 3921 §3)", () => {
    it("answers the session iq with an empty result", async () => {
      const conn = restarted();
      await input(ctx, chain, conn, bindIq("b1", "phone"));
      ctx.clearOutput();
      await input(
        ctx,
        chain,
        conn,
        `<iq type="set" id="s1"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>`,
      );
      await input(
        ctx,
        chain,
        conn,
        `<iq type="set" id="s2" to="example.com"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>`,
      );
      assertXmlList(ctx.received(conn), [
        `<iq type="result" id="s1" to="${ALICE}/phone"/>`,
        `<iq type="result" id="s2" from="example.com" to="${ALICE}/phone"/>`,
      ]);
    });
  });
});
