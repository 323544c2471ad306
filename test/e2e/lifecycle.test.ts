// Liveness and shutdown through the real mesh: server-to-client liveness checks (XEP-0199
// pings, XEP-0198 <r/> for clients with stream management) and an edge draining on SIGTERM.
import assert from "node:assert/strict";
import { Mesh, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { RawClient, isStreamError } from "../helpers/raw-client.js";
import { TestUser, isMessageFrom, isPresenceFrom, xml } from "../helpers/xmpp-client.js";

const isServerPing = (el: {
  is(name: string): boolean;
  attrs: Record<string, string>;
  getChild(n: string, ns?: string): unknown;
}) =>
  el.is("iq") &&
  el.attrs.type === "get" &&
  el.attrs.from === "localhost" &&
  !!el.getChild("ping", "urn:xmpp:ping");
const isAckRequest = (el: { is(name: string, ns?: string): boolean }) =>
  el.is("r", "urn:xmpp:sm:3");

describe("e2e: liveness and shutdown", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let session: SessionProcess;

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 4,
      env: { MEGAPHONE_CLIENT_PING_INTERVAL_MS: "500", MEGAPHONE_CLIENT_PING_TIMEOUT_MS: "400" },
    });
    session = await mesh.session("s1", "");
    edge = await mesh.edge("e1", "");
    for (const name of ["alice", "bob", "quiet"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
  });

  after(async () => mesh?.stop());

  it("checks a silent client, keeps one that answers and drops one that does not", async () => {
    const alice = await TestUser.connect({
      service: edge.url,
      username: "alice",
      password: "alice-pw",
    });
    const quiet = await RawClient.connect(edge.url);
    await quiet.login("quiet", "quiet-pw");
    try {
      // @xmpp/client enables XEP-0198, so it is asked for an ack (<r/>, which counts nothing)
      // rather than pinged, and answers by itself; two in a row prove the first answer was taken.
      await alice.waitForNonza(isAckRequest, "a first <r/>");
      await alice.waitForNonza(isAckRequest, "a second <r/>");
      assert.equal((await alice.ping()).attrs.type, "result");
      assert.deepEqual(alice.inbox.filter(isServerPing), [], "no XEP-0199 ping");

      await quiet.waitFrame((f) => f.includes("urn:xmpp:ping"), "a server ping");
      await quiet.waitFrame(isStreamError("connection-timeout"), "connection-timeout");
      await quiet.waitClosed();
      assert.equal((await alice.ping()).attrs.type, "result");
    } finally {
      await alice.stop();
      quiet.terminate();
    }
  });

  it("drains an edge on SIGTERM: 1001 without a stream error to its clients, unavailable to contacts, exit 0", async () => {
    const edge2 = await mesh.edge("e2", "", {
      MEGAPHONE_DRAIN_DELAY_MS: "200",
      MEGAPHONE_DRAIN_WINDOW_MS: "500",
    });
    const alice = await TestUser.connect({
      service: edge.url,
      username: "alice",
      password: "alice-pw",
    });
    const bob = await RawClient.connect(edge2.url);
    await bob.login("bob", "bob-pw");
    bob.answerPings();
    bob.send("<presence xmlns='jabber:client'/>");
    try {
      // A subscription so that bob's going away is broadcast to alice; answers to a request
      // reach interested resources (RFC 6121 §3.1.5), so alice fetches her roster first.
      await alice.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      await alice.send(xml("presence", { to: "bob@localhost", type: "subscribe" }));
      await bob.waitFrame((f) => f.includes('type="subscribe"'), "alice's request");
      bob.send('<presence xmlns="jabber:client" to="alice@localhost" type="subscribed"/>');
      await alice.waitFor(isPresenceFrom("bob@localhost", "subscribed"), "bob's approval");
      await alice.send(xml("presence"));
      await alice.waitFor(isPresenceFrom("bob@localhost", undefined), "bob's presence");

      const started = Date.now();
      const code = await edge2.stop("SIGTERM");
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 20000, "exits within the grace period");
      const closed = await bob.waitClosed();
      assert.deepEqual(closed, { code: 1001, reason: "drain" });
      // A lost transport, not an ended stream: a client with XEP-0198 may resume elsewhere.
      assert.deepEqual(
        bob.frames.filter((f) => f.includes("<stream:error") || f.includes("<close")),
        [],
      );
      await alice.waitFor(isPresenceFrom("bob@localhost", "unavailable"), "bob's unavailable");
    } finally {
      await alice.stop();
      bob.terminate();
    }
  });

  it("continues every connection when its session process is killed and restarted", async () => {
    const alice = await TestUser.connect({
      service: edge.url,
      username: "alice",
      password: "alice-pw",
    });
    const bob = await TestUser.connect({ service: edge.url, username: "bob", password: "bob-pw" });
    try {
      await bob.send(xml("presence"));
      await bob.ping();
      await session.stop("SIGKILL");
      // While no session runs, the edge keeps accepting frames into the shard inboxes.
      await alice.send(
        xml("message", { to: "bob@localhost", type: "chat" }, xml("body", {}, "across a crash")),
      );
      session = await mesh.session("s1", "");
      const message = await bob.waitFor(
        isMessageFrom("alice@localhost", "across a crash"),
        "the message",
        10000,
      );
      assert.equal(message.attrs.from, alice.jid);
      assert.equal((await alice.ping()).attrs.type, "result");
    } finally {
      await alice.stop();
      await bob.stop();
    }
  });
});
