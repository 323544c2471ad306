// Hostile and broken input against the real mesh (Redis + edge + session processes): each
// bad client gets its precise stream error or close, and a well-behaved user on the same
// edge and session keeps being served — asserted in the same test.
import assert from "node:assert/strict";
import { until } from "../helpers/poll.js";
import { Mesh, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { RawClient, isStreamError } from "../helpers/raw-client.js";
import { TestUser } from "../helpers/xmpp-client.js";

const MAX_STANZA_BYTES = 10000;

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name + "{"));
  return Number(line?.split(" ").pop() ?? NaN);
}

describe("e2e: bad input", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let session: SessionProcess;
  let witness: TestUser;

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 4,
      env: {
        MEGAPHONE_MAX_STANZA_BYTES: String(MAX_STANZA_BYTES),
        MEGAPHONE_INBOUND_BURST_BYTES: "100000",
      },
    });
    session = await mesh.session("s1", "");
    // Every client here comes from 127.0.0.1: the per-address limits (edge-limits.test.ts,
    // edge-slow-frames.test.ts) would refuse the connection churn this suite is about.
    edge = await mesh.edge("e1", "", {
      MEGAPHONE_UPGRADES_PER_ADDRESS_PER_SECOND: "100000",
      MEGAPHONE_UPGRADE_BURST_PER_ADDRESS: "100000",
      MEGAPHONE_MAX_UNAUTHENTICATED_CONNECTIONS_PER_ADDRESS: "5000",
      MEGAPHONE_MAX_UNAUTHENTICATED_CONNECTIONS: "5000",
    });
    await mesh.addUser("mallory@localhost", "mallory-pw");
    await mesh.addUser("walter@localhost", "walter-pw");
    witness = await TestUser.connect({
      service: edge.url,
      username: "walter",
      password: "walter-pw",
    });
  });

  after(async () => {
    await witness?.stop();
    await mesh?.stop();
  });

  /** The well-behaved user still gets answers. */
  async function othersStillServed(): Promise<void> {
    const pong = await witness.ping();
    assert.equal(pong.attrs.type, "result");
  }

  async function loggedIn(): Promise<RawClient> {
    const raw = await RawClient.connect(edge.url);
    await raw.login("mallory", "mallory-pw");
    return raw;
  }

  it("answers malformed XML with not-well-formed and closes", async () => {
    const raw = await loggedIn();
    raw.send('<message xmlns="jabber:client" to="walter@localhost"><body>x</message>');
    await raw.waitFrame(isStreamError("not-well-formed"), "not-well-formed");
    await raw.waitFrame((f) => f.startsWith("<close"), "<close/>");
    await raw.waitClosed();
    await othersStillServed();
  });

  it("answers a DOCTYPE with entity expansion (billion laughs) with restricted-xml", async () => {
    const raw = await loggedIn();
    const lol = [
      '<!DOCTYPE lolz [<!ENTITY lol "lol">',
      '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">',
      '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>',
      '<message xmlns="jabber:client" to="walter@localhost"><body>&lol2;</body></message>',
    ].join("");
    raw.send(lol);
    await raw.waitFrame(isStreamError("restricted-xml"), "restricted-xml");
    await raw.waitClosed();
    await othersStillServed();
  });

  it("answers a stanza over the size limit with policy-violation", async () => {
    const raw = await loggedIn();
    raw.send(
      `<message xmlns="jabber:client" to="walter@localhost"><body>${"x".repeat(MAX_STANZA_BYTES)}</body></message>`,
    );
    await raw.waitFrame(isStreamError("policy-violation"), "policy-violation");
    await raw.waitClosed();
    await othersStillServed();
  });

  it("refuses an upgrade without the xmpp subprotocol or with another one", async () => {
    await assert.rejects(
      RawClient.connect(edge.url, []),
      (err: { status?: number }) => err.status === 400,
    );
    await assert.rejects(
      RawClient.connect(edge.url, ["mqtt"]),
      (err: { status?: number }) => err.status === 400,
    );
    await othersStillServed();
  });

  it("closes a connection that sends a binary frame", async () => {
    const raw = await RawClient.connect(edge.url);
    raw.open();
    await raw.waitFrame((f) => f.includes("<stream:features"), "features");
    raw.send(Buffer.from('<presence xmlns="jabber:client"/>'), true);
    const closed = await raw.waitClosed();
    assert.equal(closed.code, 1003);
    await othersStillServed();
  });

  it("closes a connection that sends invalid UTF-8 in a text frame", async () => {
    const raw = await RawClient.connect(edge.url);
    raw.open();
    await raw.waitFrame((f) => f.includes("<stream:features"), "features");
    raw.ws.send(Buffer.from([0x3c, 0x61, 0xff, 0xfe, 0x2f, 0x3e]), { binary: false });
    // uWS validates UTF-8 in text messages itself and fails the connection (RFC 6455 §8.1)
    // before the edge sees the frame: the client observes 1006 (no close frame) or 1007.
    const closed = await raw.waitClosed();
    assert.ok(closed.code === 1006 || closed.code === 1007, `closed with ${closed.code}`);
    await othersStillServed();
  });

  it("answers a stanza before authentication with not-authorized", async () => {
    const raw = await RawClient.connect(edge.url);
    raw.open();
    await raw.waitFrame((f) => f.includes("<stream:features"), "features");
    raw.send('<message xmlns="jabber:client" to="walter@localhost"><body>sneaky</body></message>');
    await raw.waitFrame(isStreamError("not-authorized"), "not-authorized");
    await raw.waitClosed();
    await witness.expectNone(
      (el) => el.getChildText("body") === "sneaky",
      () => witness.ping(),
    );
  });

  it("answers an unknown host and a wrong version in <open/> with their stream errors", async () => {
    const host = await RawClient.connect(edge.url);
    host.open("elsewhere.example");
    await host.waitFrame(isStreamError("host-unknown"), "host-unknown");
    await host.waitClosed();
    const version = await RawClient.connect(edge.url);
    version.send(
      '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="2.0"/>',
    );
    await version.waitFrame(isStreamError("unsupported-version"), "unsupported-version");
    await othersStillServed();
  });

  it("refuses a wrong password three times, then ends the stream", async () => {
    const raw = await RawClient.connect(edge.url);
    raw.open();
    await raw.waitFrame((f) => f.includes("<stream:features"), "features");
    const bad = Buffer.from("\0mallory\0wrong").toString("base64");
    for (let i = 0; i < 3; i++)
      raw.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${bad}</auth>`);
    await raw.waitFrame((f) => f.includes("<not-authorized/>"), "SASL not-authorized");
    await raw.waitFrame(isStreamError("policy-violation"), "policy-violation after 3 failures");
    await raw.waitClosed();
    await othersStillServed();
  });

  it("survives 10k connections opened and dropped without a word", async function () {
    this.timeout(120000);
    const total = 10000;
    const wave = 500;
    for (let done = 0; done < total; done += wave) {
      const clients = await Promise.all(
        Array.from({ length: wave }, () => RawClient.connect(edge.url)),
      );
      for (const c of clients) c.terminate();
      await Promise.all(clients.map((c) => c.closed));
    }
    // Every socket's close reached the session: no state is left behind for any of them.
    const metricsUrl = `http://127.0.0.1:${edge.port}/metrics`;
    await until(
      async () => (await metric(metricsUrl, "megaphone_edge_connections")) <= 1,
      "the edge to forget the dropped connections",
      30000,
      100,
    );
    const sessionMetrics = `http://127.0.0.1:${session.httpPort}/metrics`;
    await until(
      async () => (await metric(sessionMetrics, "megaphone_session_connections")) <= 1,
      "the session to forget the dropped connections",
      30000,
      100,
    );
    await othersStillServed();
  });
});
