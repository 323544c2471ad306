// SASL2 (XEP-0388), Bind 2 (XEP-0386) and FAST (XEP-0484) through a real mesh (Redis, one edge,
// one session process), driven by @xmpp/client 0.14's own @xmpp/sasl2, bind2, fast and
// @xmpp/sasl-ht-sha-256-none, next to a user who logs in the RFC 6120 way; then raw frames for
// the precise errors a library would never provoke. Each bad client is closed or failed alone.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import type { Element } from "ltx";
import { Mesh, metricValue, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { RawClient, isStreamError } from "../helpers/raw-client.js";
import { until } from "../helpers/poll.js";
import { freePort } from "../helpers/redis-server.js";
import type { XmppClient } from "@xmpp/client";
import {
  TestUser,
  isMessageFrom,
  isPresenceFrom,
  loginAs,
  xml,
  type UserOptions,
} from "../helpers/xmpp-client.js";

const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const SASL2 = "urn:xmpp:sasl:2";
const BIND2 = "urn:xmpp:bind:0";
const FAST = "urn:xmpp:fast:0";
const AGENT = "8a0a8c6a-52f1-4d4e-9a76-5b1e0e0d2f11";

/** The SASL2 elements (not stanzas: the inbox skips them) an @xmpp/client sends. */
function recordSasl2(sent: Element[]) {
  return (xmpp: XmppClient) =>
    xmpp.on("send", (el: Element) => {
      if (el.attrs.xmlns === SASL2) sent.push(el);
    });
}

const b64 = (data: Buffer | string) => Buffer.from(data).toString("base64");
const htInitiator = (user: string, token: string) =>
  b64(
    Buffer.concat([
      Buffer.from(`${user}\0`),
      createHmac("sha256", token).update("Initiator").digest(),
    ]),
  );

describe("e2e: SASL2, Bind 2 and FAST with @xmpp/client", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let session: SessionProcess;
  let edgeMetricsPort: number;
  const users: TestUser[] = [];

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({ shardCount: 2 });
    session = await mesh.session("s1", "");
    edgeMetricsPort = await freePort();
    edge = await mesh.edge("e1", "", { MEGAPHONE_METRICS_PORT: String(edgeMetricsPort) });
    for (const name of ["alice", "bob", "carol", "dave"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
  });

  after(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await mesh?.stop();
  });

  const logins = (mechanism: string, result: string) =>
    metricValue(
      session.httpPort,
      `megaphone_session_logins_total{mechanism="${mechanism}",result="${result}"}`,
    );

  async function sasl2User(options: Partial<UserOptions> = {}) {
    const user = await TestUser.connect({
      service: edge.url,
      username: "bob",
      password: "bob-pw",
      resource: "phone",
      login: "sasl2",
      userAgentId: AGENT,
      ...options,
    });
    users.push(user);
    return user;
  }

  /** A chat both ways between a legacy-login alice and `bob`. */
  async function chat(alice: TestUser, bob: TestUser, text: string): Promise<void> {
    await alice.send(xml("message", { to: bob.jid, type: "chat" }, xml("body", {}, `${text} a`)));
    await bob.waitFor(isMessageFrom(alice.jid, `${text} a`), "alice's message");
    await bob.send(xml("message", { to: alice.jid, type: "chat" }, xml("body", {}, `${text} b`)));
    await alice.waitFor(isMessageFrom(bob.jid, `${text} b`), "bob's message");
  }

  it("logs in with SASL2 + Bind 2 in one exchange, chats, and reconnects with FAST (no SCRAM)", async () => {
    const alice = await loginAs(users, edge.url, "alice", { resource: "pc" });
    assert.equal(alice.jid, "alice@localhost/pc", "RFC 6120 binding");

    // First login: SCRAM over SASL2, Bind 2 with stream management inline, a token asked for.
    const scramBefore = await logins("SCRAM-SHA-256", "success");
    let bob = await sasl2User();
    assert.match(bob.jid, /^bob@localhost\/phone\/[0-9a-f]{12}$/, "Bind 2: <tag>/<id>");
    const sm = (bob.xmpp as unknown as { streamManagement: { enabled: boolean; id: string } })
      .streamManagement;
    assert.ok(sm.enabled, "XEP-0198 enabled inline, in <bound/>");
    const token = await bob.fastToken();
    assert.ok(token, "a FAST token in <success/>");
    assert.equal(token.mechanism, "HT-SHA-256-NONE");
    assert.ok(Date.parse(token.expiry) > Date.now());
    assert.equal(await logins("SCRAM-SHA-256", "success"), scramBefore + 1);
    await chat(alice, bob, "first");
    // Presence and roster work as after RFC 6120 binding: alice sees bob come online.
    const roster = await bob.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    assert.ok(roster.is("query", "jabber:iq:roster"));
    await bob.send(xml("presence", { to: alice.jid }));
    await alice.waitFor(isPresenceFrom(bob.jid), "bob's directed presence");
    const firstJid = bob.jid;
    await bob.stop();

    // Reconnect: the token, in one message; same client installation, same resource.
    const sent: Element[] = [];
    bob = await sasl2User({ fastToken: token, beforeStart: recordSasl2(sent) });
    assert.deepEqual(
      sent.map((el) => [el.name, el.attrs.mechanism, !!el.getChild("fast", FAST)]),
      [["authenticate", "HT-SHA-256-NONE", true]],
      "one <authenticate/> with the token, no <response/>",
    );
    assert.equal(bob.jid, firstJid, "a stable resource for the same user-agent id");
    assert.equal(await logins("HT-SHA-256-NONE", "success"), 1, "FAST, counted by mechanism");
    assert.equal(await logins("SCRAM-SHA-256", "success"), scramBefore + 1, "no SCRAM this time");
    await chat(alice, bob, "second");
    await bob.stop();
  });

  // Resumption inline in <authenticate/> is not offered, so @xmpp/client binds anew; its stable
  // resource takes the hibernating session over, and what that session held reaches it.
  it("a SASL2 client that lost its socket logs in again and gets what was sent meanwhile", async () => {
    const alice = await loginAs(users, edge.url, "alice", { resource: "tablet" });
    const bob = await sasl2User({ resource: "laptop" });
    const sm = (bob.xmpp as unknown as { streamManagement: { enabled: boolean } }).streamManagement;
    assert.ok(sm.enabled);
    await chat(alice, bob, "before");
    const jid = bob.jid;
    bob.kill();
    for (let i = 1; i <= 3; i++)
      await alice.send(
        xml("message", { to: jid, type: "chat" }, xml("body", {}, `while away ${i}`)),
      );
    await alice.ping();
    const back = await sasl2User({ resource: "laptop" });
    assert.equal(back.jid, jid, "the same resource");
    await back.send(xml("presence"));
    for (let i = 1; i <= 3; i++)
      await back.waitFor(isMessageFrom(alice.jid, `while away ${i}`), `message ${i}`);
    await chat(alice, back, "after");
    // Each once: nothing left over after a round trip.
    await back.expectNone(
      (el) => el.is("message") && (el.getChildText("body") ?? "").startsWith("while away"),
      () => back.ping(),
    );
  });

  it("answers a token invalidated since with not-authorized; the client falls back to SCRAM", async () => {
    const first = await TestUser.connect({
      service: edge.url,
      username: "carol",
      password: "carol-pw",
      login: "sasl2",
      userAgentId: AGENT,
    });
    users.push(first);
    const token = await first.fastToken();
    assert.ok(token);
    await first.stop();

    // Another holder of the token logs in with it and invalidates it (XEP-0484 §4.6).
    const raw = await RawClient.connect(edge.url);
    raw.open();
    await raw.waitFrame((f) => f.includes("<authentication"), "SASL2 features");
    raw.send(
      `<authenticate xmlns="${SASL2}" mechanism="HT-SHA-256-NONE">` +
        `<initial-response>${htInitiator("carol", token.token)}</initial-response>` +
        `<user-agent id="${AGENT}"/><fast xmlns="${FAST}" invalidate="true"/></authenticate>`,
    );
    await raw.waitFrame((f) => f.startsWith("<success"), "success with the token");
    raw.close();

    // Replayed: refused; @xmpp/client drops the token and logs in with its password.
    const scramBefore = await logins("SCRAM-SHA-256", "success");
    const sent: Element[] = [];
    const again = await TestUser.connect({
      beforeStart: recordSasl2(sent),
      service: edge.url,
      username: "carol",
      password: "carol-pw",
      login: "sasl2",
      userAgentId: AGENT,
      fastToken: token,
    });
    users.push(again);
    assert.deepEqual(
      sent.filter((el) => el.name === "authenticate").map((el) => el.attrs.mechanism),
      ["HT-SHA-256-NONE", "SCRAM-SHA-256"],
    );
    assert.equal(await logins("HT-SHA-256-NONE", "not-authorized"), 1);
    assert.equal(await logins("SCRAM-SHA-256", "success"), scramBefore + 1);
    assert.match(again.jid, /^carol@localhost\//);
    const fresh = await again.fastToken();
    assert.ok(fresh && fresh.token !== token.token, "a new token with the password login");
  });

  describe("raw frames", () => {
    async function opened(): Promise<RawClient> {
      const raw = await RawClient.connect(edge.url);
      raw.open();
      await raw.waitFrame((f) => f.includes("<authentication"), "SASL2 features");
      return raw;
    }
    const plain = (user: string, pw: string) => b64(`\0${user}\0${pw}`);
    const saslFailure = (condition: string) => (f: string) =>
      f.startsWith(`<failure xmlns="${SASL2}"`) && f.includes(`<${condition} xmlns="${SASL}"/>`);

    /** dave, logged in the usual way, is served throughout. */
    async function othersStillServed(): Promise<void> {
      const dave = await loginAs(users, edge.url, "dave", { resource: `w${Date.now()}` });
      await dave.ping();
      await dave.stop();
    }

    it("fails an unknown mechanism, a forged token and a bad bind tag precisely, on an open stream", async () => {
      const raw = await opened();
      raw.send(
        `<authenticate xmlns="${SASL2}" mechanism="X-MADE-UP"><initial-response>AA==</initial-response></authenticate>`,
      );
      await raw.waitFrame(saslFailure("invalid-mechanism"), "invalid-mechanism");
      raw.send(
        `<authenticate xmlns="${SASL2}" mechanism="HT-SHA-256-NONE">` +
          `<initial-response>${htInitiator("dave", "x".repeat(72))}</initial-response>` +
          `<user-agent id="${AGENT}"/><fast xmlns="${FAST}"/></authenticate>`,
      );
      await raw.waitFrame(saslFailure("not-authorized"), "not-authorized for a forged token");
      // The third failure ends the stream (maxAuthFailures), with its reason.
      raw.send(
        `<authenticate xmlns="${SASL2}" mechanism="PLAIN">` +
          `<initial-response>${plain("dave", "dave-pw")}</initial-response>` +
          `<bind xmlns="${BIND2}"><tag>${"t".repeat(100)}</tag></bind></authenticate>`,
      );
      const failed = await raw.waitFrame(saslFailure("malformed-request"), "malformed-request");
      assert.match(failed, /<text>Bind 2 &lt;tag\/&gt; exceeds 64 bytes<\/text>/);
      await raw.waitFrame(isStreamError("policy-violation"), "policy-violation");
      await raw.waitClosed();
      await othersStillServed();
    });

    it("binds in the same round trip, with the features of a bound stream after <success/>", async () => {
      const raw = await opened();
      raw.send(
        `<authenticate xmlns="${SASL2}" mechanism="PLAIN">` +
          `<initial-response>${plain("dave", "dave-pw")}</initial-response>` +
          `<bind xmlns="${BIND2}"><tag>raw</tag></bind></authenticate>`,
      );
      const success = await raw.waitFrame((f) => f.startsWith("<success"), "success");
      assert.match(
        success,
        /<authorization-identifier>dave@localhost\/raw\/[0-9a-f]{12}<\/authorization-identifier><bound xmlns="urn:xmpp:bind:0"\/>/,
      );
      const features = await raw.waitFrame((f) => f.includes("<stream:features"), "features");
      assert.ok(!features.includes("urn:ietf:params:xml:ns:xmpp-bind"), features);
      // The edge sees no stream restart, yet counts the socket as authenticated at once.
      await until(
        async () =>
          (await metricValue(edgeMetricsPort, "megaphone_edge_unauthenticated_connections")) === 0,
        "the edge to count the SASL2 login as authenticated",
      );
      raw.send(`<iq xmlns="jabber:client" type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq>`);
      await raw.waitFrame((f) => f.includes('id="p"') && f.includes('type="result"'), "pong");
      // Authenticating again on a bound stream is no stanza: a stream error ends it.
      raw.send(`<authenticate xmlns="${SASL2}" mechanism="PLAIN"/>`);
      await raw.waitFrame(isStreamError("unsupported-stanza-type"), "unsupported-stanza-type");
      await raw.waitClosed();
      await othersStillServed();
    });

    it("closes a stream that authenticates before opening, and one sending stanzas mid-exchange", async () => {
      const early = await RawClient.connect(edge.url);
      early.send(`<authenticate xmlns="${SASL2}" mechanism="PLAIN"/>`);
      await early.waitFrame(isStreamError("not-authorized"), "not-authorized");
      await early.waitClosed();
      const mid = await opened();
      mid.send(`<authenticate xmlns="${SASL2}" mechanism="PLAIN"/>`);
      await mid.waitFrame((f) => f.startsWith(`<challenge xmlns="${SASL2}"`), "empty challenge");
      mid.send(`<message xmlns="jabber:client" to="alice@localhost"><body>x</body></message>`);
      await mid.waitFrame(isStreamError("not-authorized"), "not-authorized");
      await mid.waitClosed();
      await othersStillServed();
    });
  });
});
