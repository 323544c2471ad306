// RFC 7395 §3.3 and §3.6 (framing: <open/>, <close/>), RFC 6120 §4.3 (stream features),
// §4.3.3 (restart after SASL) and §4.9 (stream errors), XEP-0478 (stream limits), through the
// real session core (handleFrame) with memory stores.
import { strict as assert } from "node:assert";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { parseArgs } from "../../services/shared/config-parse.js";
import { TestSessionContext, assertXml, assertXmlList, input } from "../helpers/session-context.js";

const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const OPEN = `<open xmlns="${FRAMING}" to="example.com" version="1.0"/>`;
const OPEN_REPLY = `<open xmlns="${FRAMING}" from="example.com" id="*" version="1.0" xml:lang="en"/>`;
const STREAMS = "http://etherx.jabber.org/streams";
const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";

function limits(maxBytes: number, idleSeconds: number): string {
  return (
    `<limits xmlns="urn:xmpp:stream-limits:0">` +
    `<max-bytes>${maxBytes}</max-bytes><idle-seconds>${idleSeconds}</idle-seconds></limits>`
  );
}

/** XEP-0388 SASL2 next to RFC 6120 SASL, with Bind 2 (XEP-0386) and, if offered, FAST. */
function authentication(fast: boolean): string {
  return (
    `<authentication xmlns="urn:xmpp:sasl:2"><mechanism>SCRAM-SHA-256</mechanism>` +
    `<mechanism>SCRAM-SHA-1</mechanism><inline><bind xmlns="urn:xmpp:bind:0">` +
    `<inline><feature var="urn:xmpp:sm:3"/></inline></bind>` +
    (fast ? `<fast xmlns="urn:xmpp:fast:0"><mechanism>HT-SHA-256-NONE</mechanism></fast>` : "") +
    `</inline></authentication>`
  );
}

function plain(user: string, password: string): string {
  return Buffer.from(`\0${user}\0${password}`, "utf8").toString("base64");
}

describe("stream (RFC 7395 framing, RFC 6120 §4)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let conn: ConnState;
  let serial = 0;

  function fresh(): ConnState {
    return newConnState(`edge-test.0.s${++serial}`, "edge-test", 0, ctx.nowMs);
  }

  beforeEach(() => {
    ctx = new TestSessionContext();
    chain = buildHandlerChain();
    conn = fresh();
  });

  it("answers <open/> with <open/> and SASL features with the XEP-0478 limits", async () => {
    await input(ctx, chain, conn, OPEN);
    assertXmlList(ctx.received(conn), [
      OPEN_REPLY,
      `<stream:features xmlns:stream="${STREAMS}">` +
        `<mechanisms xmlns="${SASL}"><mechanism>SCRAM-SHA-256</mechanism>` +
        `<mechanism>SCRAM-SHA-1</mechanism></mechanisms>` +
        `${authentication(false)}${limits(262144, 300)}</stream:features>`,
    ]);
    assert.equal(conn.stage, "opened");
    assert.notEqual(conn.streamId, "");
    assert.equal(ctx.received(conn)[0].attrs.id, conn.streamId);
    assert.deepEqual(ctx.closed, []);
  });

  // RFC 6120 §13.8: PLAIN exposes the password, so by default it needs a secure connection.
  for (const [why, config, offered] of [
    ["on a connection not known to be secure (the default)", {}, false],
    ["behind a TLS-terminating proxy", { tlsTerminatedByProxy: true }, true],
    ["when the operator allows it without TLS", { plainRequiresTls: false }, true],
    ["never when allowPlain is off", { tlsTerminatedByProxy: true, allowPlain: false }, false],
  ] as const) {
    it(`${offered ? "offers" : "does not offer"} PLAIN ${why}`, async () => {
      ctx = new TestSessionContext({ config });
      await input(ctx, chain, conn, OPEN);
      const mechanisms = ctx
        .received(conn)[1]
        ?.getChild("mechanisms", SASL)
        ?.getChildren("mechanism")
        .map((m) => m.getText());
      const plain = offered ? ["PLAIN"] : [];
      assert.deepEqual(mechanisms, ["SCRAM-SHA-256", "SCRAM-SHA-1", ...plain]);
    });
  }

  it("advertises config.maxStanzaBytes and idleTimeoutMs", async () => {
    ctx = new TestSessionContext({
      config: {
        allowPlain: false,
        tlsTerminatedByProxy: true,
        maxStanzaBytes: 20000,
        idleTimeoutMs: 61500,
      },
    });
    await input(ctx, chain, conn, OPEN);
    assertXmlList(ctx.received(conn), [
      OPEN_REPLY,
      `<stream:features xmlns:stream="${STREAMS}">` +
        `<mechanisms xmlns="${SASL}"><mechanism>SCRAM-SHA-256</mechanism>` +
        `<mechanism>SCRAM-SHA-1</mechanism></mechanisms>` +
        `${authentication(true)}${limits(20000, 61)}</stream:features>`,
    ]);
  });

  it("accepts an <open/> without `to` and a `to` that differs only in case", async () => {
    await input(ctx, chain, conn, `<open xmlns="${FRAMING}" version="1.0"/>`);
    const other = fresh();
    await input(ctx, chain, other, `<open xmlns="${FRAMING}" to="EXAMPLE.com" version="1.0"/>`);
    assert.equal(conn.stage, "opened");
    assert.equal(other.stage, "opened");
    assert.equal(ctx.received(conn).length, 2);
    assert.equal(ctx.received(other).length, 2);
    assert.deepEqual(ctx.closed, []);
  });

  it("serves a domain configured in mixed case under its prepared form (RFC 7622 §3.2)", async () => {
    const { domain } = parseArgs(["--domain", "Example.COM."], {}).config;
    ctx = new TestSessionContext({ domain });
    for (const to of ["example.com", "Example.com", "EXAMPLE.COM."]) {
      const c = fresh();
      await input(ctx, chain, c, `<open xmlns="${FRAMING}" to="${to}" version="1.0"/>`);
      assert.equal(c.stage, "opened", `to="${to}" opens a stream`);
      assertXml(ctx.received(c)[0], OPEN_REPLY);
    }
    assert.deepEqual(ctx.closed, []);
  });

  it("answers host-unknown for a `to` that is no valid domainpart", async () => {
    await input(ctx, chain, conn, `<open xmlns="${FRAMING}" to="example.com:5280" version="1.0"/>`);
    assert.deepEqual(
      ctx.closed.map((c) => [c.connId, c.condition]),
      [[conn.connId, "host-unknown"]],
    );
  });

  it("sends its own <open/>, then host-unknown, for a `to` it does not serve (§4.9.1.1)", async () => {
    await input(ctx, chain, conn, `<open xmlns="${FRAMING}" to="example.org" version="1.0"/>`);
    assertXmlList(ctx.received(conn), [OPEN_REPLY]);
    assert.deepEqual(
      ctx.closed.map((c) => [c.connId, c.condition]),
      [[conn.connId, "host-unknown"]],
    );
    assert.equal(conn.stage, "closed");
  });

  it("refuses a new stream on an overloaded shard with resource-constraint", async () => {
    ctx.overloadedShards.add(conn.shard);
    await input(ctx, chain, conn, `<open xmlns="${FRAMING}" to="example.com" version="1.0"/>`);
    assertXmlList(ctx.received(conn), [OPEN_REPLY]);
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["resource-constraint"],
    );
    // Once the shard has caught up, a new stream is served again.
    ctx.overloadedShards.clear();
    const next = fresh();
    await input(ctx, chain, next, `<open xmlns="${FRAMING}" to="example.com" version="1.0"/>`);
    assert.equal(next.stage, "opened");
  });

  it("ends the stream with unsupported-version for a version other than 1.0", async () => {
    await input(ctx, chain, conn, `<open xmlns="${FRAMING}" to="example.com" version="2.0"/>`);
    assertXmlList(ctx.received(conn), [OPEN_REPLY]);
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["unsupported-version"],
    );
  });

  it("ends the stream with unsupported-version when the version is missing", async () => {
    await input(ctx, chain, conn, `<open xmlns="${FRAMING}" to="example.com"/>`);
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["unsupported-version"],
    );
    assert.notEqual(conn.stage, "opened");
  });

  it("refuses <stream:stream> (TCP framing) with unsupported-version", async () => {
    await input(
      ctx,
      chain,
      conn,
      `<stream:stream xmlns:stream="${STREAMS}" xmlns="jabber:client" to="example.com" version="1.0"></stream:stream>`,
    );
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["unsupported-version"],
    );
  });

  it("offers bind and session features after the restart that follows SASL (§4.3.3)", async () => {
    ctx = new TestSessionContext({ config: { tlsTerminatedByProxy: true } });
    await ctx.stores.accounts.create("alice@example.com", createAccount("secret", 4096));
    await input(ctx, chain, conn, OPEN);
    const firstStreamId = conn.streamId;
    await input(
      ctx,
      chain,
      conn,
      `<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", "secret")}</auth>`,
    );
    assert.equal(conn.stage, "authenticated");
    ctx.clearOutput();

    await input(ctx, chain, conn, OPEN);
    assertXmlList(ctx.received(conn), [
      OPEN_REPLY,
      `<stream:features xmlns:stream="${STREAMS}">` +
        `<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/>` +
        `<session xmlns="urn:ietf:params:xml:ns:xmpp-session"><optional/></session>` +
        `<ver xmlns="urn:xmpp:features:rosterver"/>` +
        `<sub xmlns="urn:xmpp:features:pre-approval"/>` +
        `<sm xmlns="urn:xmpp:sm:3"/>` +
        `${limits(262144, 300)}</stream:features>`,
    ]);
    assert.equal(conn.stage, "restarted");
    assert.notEqual(conn.streamId, firstStreamId, "a restart is a new stream with a new id");
    assert.deepEqual(ctx.closed, []);
  });

  it("refuses a second <open/> on a bound stream with policy-violation", async () => {
    const bound = await ctx.connect("alice@example.com/phone");
    await input(ctx, chain, bound, OPEN);
    assert.deepEqual(ctx.receivedXml(bound), []);
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["policy-violation"],
    );
  });

  it("answers <close/> by closing without a stream error (RFC 7395 §3.6)", async () => {
    await input(ctx, chain, conn, OPEN);
    ctx.clearOutput();
    await input(ctx, chain, conn, `<close xmlns="${FRAMING}"/>`);
    // ctx.close() is the effect that writes </close> and ends the socket.
    assert.deepEqual(ctx.closed, [{ connId: conn.connId, condition: undefined, text: undefined }]);
    assert.equal(conn.stage, "closed");
    assert.deepEqual(ctx.receivedXml(conn), [], "no stream error before the </close>");
  });

  it("answers <close/> on a bound stream the same way", async () => {
    const bound = await ctx.connect("alice@example.com/phone");
    await input(ctx, chain, bound, `<close xmlns="${FRAMING}"/>`);
    assert.deepEqual(ctx.closed, [{ connId: bound.connId, condition: undefined, text: undefined }]);
    assert.equal(bound.stage, "closed");
  });

  it("ignores every frame once the stream is closed", async () => {
    await input(ctx, chain, conn, `<close xmlns="${FRAMING}"/>`);
    await input(ctx, chain, conn, OPEN);
    assert.deepEqual(ctx.receivedXml(conn), []);
    assert.equal(ctx.closed.length, 1);
  });

  it("refuses an unknown framing element with unsupported-stanza-type", async () => {
    await input(ctx, chain, conn, `<reopen xmlns="${FRAMING}"/>`);
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["unsupported-stanza-type"],
    );
  });

  it("refuses anything but <open/> on a new connection with not-authorized", async () => {
    await input(ctx, chain, conn, `<message to="bob@example.com"><body>hi</body></message>`);
    assert.deepEqual(ctx.receivedXml(conn), []);
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["not-authorized"],
    );
  });

  it("refuses a frame larger than maxStanzaBytes with policy-violation", async () => {
    ctx = new TestSessionContext({ config: { maxStanzaBytes: 10000 } });
    await input(ctx, chain, conn, OPEN);
    await input(
      ctx,
      chain,
      conn,
      `<auth xmlns="${SASL}" mechanism="PLAIN">${"A".repeat(10000)}</auth>`,
    );
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["policy-violation"],
    );
  });

  it("gives the stream id of the reply <open/> to the connection", async () => {
    await input(ctx, chain, conn, OPEN);
    assertXml(ctx.received(conn)[0], OPEN_REPLY.replace(`id="*"`, `id="${conn.streamId}"`));
  });
});
