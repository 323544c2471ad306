// SCRAM-*-PLUS (RFC 5802 §6) over the TLS connections the edge terminates: the `open` packet's
// TLS fields (packets.ts), what the session offers on such a connection (XEP-0440 and the
// -PLUS mechanisms, PLAIN by real TLS), the channel-binding checks through the real session
// core (handleFrame) for RFC 6120 SASL and SASL2, and the edge's tls-server-end-point hash
// choice (channel-binding.ts). The client is the independent one in test/helpers.
import { strict as assert } from "node:assert";
import { randomBytes, X509Certificate } from "node:crypto";
import type { Element } from "ltx";
import { signatureAlgorithmOid } from "../../services/edge/tcp/channel-binding.js";
import { shardPacketOf } from "../../services/shared/bus/packets.js";
import {
  newConnState,
  type ConnState,
  type ConnTls,
} from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { ScramSha256Mechanism } from "../helpers/sasl-scram-sha-256.js";
import { TestSessionContext, input } from "../helpers/session-context.js";
import { makeCert } from "../helpers/tls-cert.js";

const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const SASL2 = "urn:xmpp:sasl:2";
const SASL_CB = "urn:xmpp:sasl-cb:0";
const ALICE = "alice@example.com";
const PASSWORD = "correct horse";

const EXPORTER = randomBytes(32);
const END_POINT = randomBytes(32);
const TLS: ConnTls = {
  exporter: EXPORTER.toString("base64"),
  endPoint: END_POINT.toString("base64"),
};

const b64 = (binary: string) => Buffer.from(binary, "latin1").toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64").toString("latin1");

describe("channel binding (SCRAM-*-PLUS, XEP-0440)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let conn: ConnState;

  async function opened(tls: ConnTls | undefined): Promise<ConnState> {
    const c = newConnState(`edge-test.0.${randomBytes(4).toString("hex")}`, "edge-test", 0, 0, tls);
    await input(ctx, chain, c, `<open xmlns="${FRAMING}" to="example.com" version="1.0"/>`);
    assert.equal(c.stage, "opened");
    return c;
  }

  async function send(xml: string): Promise<Element[]> {
    ctx.clearOutput();
    await input(ctx, chain, conn, xml);
    return ctx.received(conn);
  }

  function features(): Element {
    const found = ctx.received(conn).find((el) => el.name === "stream:features");
    assert.ok(found, "stream features");
    return found;
  }

  /** One SCRAM-SHA-256[-PLUS] login over RFC 6120 SASL; returns the last element received. */
  async function login(mechanism: string, client: ScramSha256Mechanism): Promise<Element> {
    const cred = { username: "alice", password: PASSWORD };
    const [challenge] = await send(
      `<auth xmlns="${SASL}" mechanism="${mechanism}">${b64(client.response(cred))}</auth>`,
    );
    if (challenge?.name !== "challenge") return challenge as Element;
    client.challenge(unb64(challenge.getText()));
    const [last] = await send(`<response xmlns="${SASL}">${b64(client.response(cred))}</response>`);
    return last as Element;
  }

  function assertFailure(el: Element, condition: string): void {
    assert.equal(el.name, "failure", el.toString());
    assert.ok(el.getChild(condition), `expected <${condition}/>, got ${el.toString()}`);
    assert.equal(conn.stage, "opened");
    assert.equal(conn.bareJid, undefined);
  }

  beforeEach(async () => {
    ctx = new TestSessionContext({ config: { channelBinding: true } });
    chain = buildHandlerChain();
    await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, 4096));
  });

  it("offers -PLUS, XEP-0440's types and PLAIN on a TLS connection, with no proxy setting", async () => {
    conn = await opened(TLS);
    const mechanisms = features()
      .getChild("mechanisms", SASL)
      ?.getChildren("mechanism")
      .map((m) => m.getText());
    assert.deepEqual(mechanisms, [
      "SCRAM-SHA-256-PLUS",
      "SCRAM-SHA-1-PLUS",
      "SCRAM-SHA-256",
      "SCRAM-SHA-1",
      "PLAIN",
    ]);
    const sasl2 = features()
      .getChild("authentication", SASL2)
      ?.getChildren("mechanism")
      .map((m) => m.getText());
    assert.deepEqual(sasl2, mechanisms);
    const types = features()
      .getChild("sasl-channel-binding", SASL_CB)
      ?.getChildren("channel-binding")
      .map((cb) => cb.attrs.type);
    assert.deepEqual(types, ["tls-exporter", "tls-server-end-point"]);
  });

  it("offers no -PLUS and no channel-binding types on a connection the edge did not secure", async () => {
    ctx = new TestSessionContext({ config: { tlsTerminatedByProxy: true, channelBinding: true } });
    conn = await opened(undefined);
    const mechanisms = features()
      .getChild("mechanisms", SASL)
      ?.getChildren("mechanism")
      .map((m) => m.getText());
    // Behind a proxy PLAIN is fine, but the proxy's TLS is not ours to bind to.
    assert.deepEqual(mechanisms, ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
    assert.equal(features().getChild("sasl-channel-binding", SASL_CB), undefined);
    const client = new ScramSha256Mechanism({ cbindFlag: "p=tls-exporter", cbData: EXPORTER });
    assertFailure(await login("SCRAM-SHA-256-PLUS", client), "invalid-mechanism");
  });

  it("with channelBinding off (the default), offers no -PLUS on TLS and accepts 'y' (stock slixmpp 1.8.3)", async () => {
    ctx = new TestSessionContext();
    await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, 4096));
    conn = await opened(TLS);
    const mechanisms = features()
      .getChild("mechanisms", SASL)
      ?.getChildren("mechanism")
      .map((m) => m.getText());
    assert.deepEqual(mechanisms, ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
    assert.equal(features().getChild("sasl-channel-binding", SASL_CB), undefined);
    const last = await login("SCRAM-SHA-256", new ScramSha256Mechanism({ cbindFlag: "y" }));
    assert.equal(last.name, "success", last.toString());
  });

  it("offers only tls-server-end-point where TLS 1.2 gave no exporter", async () => {
    conn = await opened({ endPoint: TLS.endPoint });
    const types = features()
      .getChild("sasl-channel-binding", SASL_CB)
      ?.getChildren("channel-binding")
      .map((cb) => cb.attrs.type);
    assert.deepEqual(types, ["tls-server-end-point"]);
    const client = new ScramSha256Mechanism({ cbindFlag: "p=tls-exporter", cbData: EXPORTER });
    assertFailure(await login("SCRAM-SHA-256-PLUS", client), "not-authorized");
  });

  for (const [type, data] of [
    ["tls-exporter", EXPORTER],
    ["tls-server-end-point", END_POINT],
  ] as const) {
    it(`logs in with SCRAM-SHA-256-PLUS bound to ${type}`, async () => {
      conn = await opened(TLS);
      const client = new ScramSha256Mechanism({ cbindFlag: `p=${type}`, cbData: data });
      const success = await login("SCRAM-SHA-256-PLUS", client);
      assert.equal(success.name, "success", success.toString());
      assert.ok(client.verifyServerFinal(unb64(success.getText())), "server signature");
      assert.equal(conn.stage, "authenticated");
      assert.equal(conn.bareJid, ALICE);
    });
  }

  it("refuses a channel binding that is not this connection's with not-authorized", async () => {
    conn = await opened(TLS);
    const client = new ScramSha256Mechanism({
      cbindFlag: "p=tls-exporter",
      cbData: randomBytes(32),
    });
    assertFailure(await login("SCRAM-SHA-256-PLUS", client), "not-authorized");
  });

  it("refuses the other type's data under a type with not-authorized", async () => {
    conn = await opened(TLS);
    const client = new ScramSha256Mechanism({ cbindFlag: "p=tls-exporter", cbData: END_POINT });
    assertFailure(await login("SCRAM-SHA-256-PLUS", client), "not-authorized");
  });

  it("refuses 'y' where -PLUS was offered (a downgrade, RFC 5802 §6) and accepts 'n'", async () => {
    conn = await opened(TLS);
    const downgraded = await login("SCRAM-SHA-256", new ScramSha256Mechanism({ cbindFlag: "y" }));
    assertFailure(downgraded, "not-authorized");
    const success = await login("SCRAM-SHA-256", new ScramSha256Mechanism({ cbindFlag: "n" }));
    assert.equal(success.name, "success", success.toString());
  });

  it("accepts 'y' where no -PLUS was offered", async () => {
    conn = await opened(undefined);
    const success = await login("SCRAM-SHA-256", new ScramSha256Mechanism({ cbindFlag: "y" }));
    assert.equal(success.name, "success", success.toString());
  });

  it("refuses -PLUS without p=, and p= without -PLUS, with malformed-request", async () => {
    conn = await opened(TLS);
    assertFailure(
      await login("SCRAM-SHA-256-PLUS", new ScramSha256Mechanism({ cbindFlag: "n" })),
      "malformed-request",
    );
    const client = new ScramSha256Mechanism({ cbindFlag: "p=tls-exporter", cbData: EXPORTER });
    assertFailure(await login("SCRAM-SHA-256", client), "malformed-request");
  });

  it("logs in with SCRAM-SHA-256-PLUS over SASL2 (XEP-0388), the same exchange", async () => {
    conn = await opened(TLS);
    const client = new ScramSha256Mechanism({ cbindFlag: "p=tls-exporter", cbData: EXPORTER });
    const cred = { username: "alice", password: PASSWORD };
    const [challenge] = await send(
      `<authenticate xmlns="${SASL2}" mechanism="SCRAM-SHA-256-PLUS">` +
        `<initial-response>${b64(client.response(cred))}</initial-response></authenticate>`,
    );
    assert.equal(challenge?.name, "challenge", challenge?.toString());
    client.challenge(unb64(challenge.getText()));
    const [success] = await send(
      `<response xmlns="${SASL2}">${b64(client.response(cred))}</response>`,
    );
    assert.equal(success?.name, "success", success?.toString());
    const additional = success.getChildText("additional-data") ?? "";
    assert.ok(client.verifyServerFinal(unb64(additional)), "server signature");
    assert.equal(conn.bareJid, ALICE);
  });

  it("carries the edge's TLS fields in `open`, and drops malformed ones", () => {
    const fields = ["k", "open", "c", "e1.0.1", "e", "e1:1"];
    assert.deepEqual(shardPacketOf(fields), { k: "open", c: "e1.0.1", e: "e1:1" });
    const x = EXPORTER.toString("base64");
    assert.deepEqual(shardPacketOf([...fields, "s", "1", "x", x, "t", "no*base64"]), {
      k: "open",
      c: "e1.0.1",
      e: "e1:1",
      s: "1",
      x,
    });
    // Bindings without the TLS flag are not believed.
    assert.deepEqual(shardPacketOf([...fields, "x", x]), { k: "open", c: "e1.0.1", e: "e1:1" });
  });

  it("reads the certificate's signature algorithm for tls-server-end-point (RFC 5929 §4.1)", () => {
    const { cert } = makeCert(["localhost"]);
    const der = new X509Certificate(cert).raw;
    assert.equal(signatureAlgorithmOid(der), "1.2.840.10045.4.3.2"); // ecdsa-with-SHA256
    assert.equal(signatureAlgorithmOid(der.subarray(0, 40)), undefined);
  });
});
