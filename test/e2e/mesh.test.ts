// Scripted conversations between real @xmpp/client users through the real mesh: Redis,
// two edges and two session processes. Alice connects to edge 1 whose connections land on
// session 1's shards; Bob to edge 2 / session 2, so everything between them crosses Redis.
import assert from "node:assert/strict";
import { Mesh, metricValue, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { RawClient, isStreamError } from "../helpers/raw-client.js";
import {
  TestUser,
  isMessageFrom,
  isPresenceFrom,
  xml,
  loginAs,
  type LoginOptions,
} from "../helpers/xmpp-client.js";

const NS_ROSTER = "jabber:iq:roster";

function sessionConnections(session: SessionProcess): Promise<number> {
  return metricValue(session.httpPort, "megaphone_session_connections");
}

describe("e2e: two users across 2 edges and 2 sessions", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge1: EdgeProcess;
  let edge2: EdgeProcess;
  let session1: SessionProcess;
  let session2: SessionProcess;
  const users: TestUser[] = [];

  const login = (edge: EdgeProcess, username: string, options?: LoginOptions) =>
    loginAs(users, edge.url, username, options);

  before(async function () {
    this.timeout(60000);
    // @xmpp/client enables resumable stream management (XEP-0198): a socket that drops without
    // a word hibernates for the resumption timeout before contacts see it go.
    mesh = await Mesh.start({ shardCount: 8, env: { MEGAPHONE_RESUMPTION_TIMEOUT_MS: "2000" } });
    [session1, session2] = await Promise.all([
      mesh.session("s1", "0-3"),
      mesh.session("s2", "4-7"),
    ]);
    [edge1, edge2] = await Promise.all([mesh.edge("e1", "0-3"), mesh.edge("e2", "4-7")]);
    for (const name of ["alice", "bob", "carol", "dave", "erin", "frank"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
  });

  afterEach(async () => {
    await Promise.all(users.splice(0).map((u) => u.stop()));
  });

  after(async () => mesh?.stop());

  it("logs in with SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN, each on its own session", async () => {
    const a = await login(edge1, "alice", { mechanism: "SCRAM-SHA-256", resource: "sha256" });
    const b = await login(edge2, "bob", { mechanism: "SCRAM-SHA-1", resource: "sha1" });
    const c = await login(edge1, "carol", { mechanism: "PLAIN", resource: "plain" });
    assert.equal(a.jid, "alice@localhost/sha256");
    assert.equal(b.jid, "bob@localhost/sha1");
    assert.equal(c.jid, "carol@localhost/plain");
    assert.ok((await sessionConnections(session1)) >= 2, "alice and carol are on session 1");
    assert.ok((await sessionConnections(session2)) >= 1, "bob is on session 2");
  });

  it("refuses a wrong password with not-authorized, and keeps serving others", async () => {
    const ok = await login(edge1, "alice");
    await assert.rejects(
      TestUser.connect({ service: edge2.url, username: "bob", password: "wrong" }),
      (err: Error & { condition?: string }) =>
        err.condition === "not-authorized" || /not-authorized/.test(String(err)),
    );
    await assert.rejects(
      TestUser.connect({
        service: edge2.url,
        username: "nobody",
        password: "x",
        mechanism: "PLAIN",
      }),
      /not-authorized/,
    );
    assert.equal((await ok.ping()).attrs.type, "result");
  });

  it("subscribes both ways with roster pushes, then sees presence both ways", async () => {
    const alice = await login(edge1, "alice");
    const bob = await login(edge2, "bob");
    await alice.xmpp.iqCaller.get(xml("query", { xmlns: NS_ROSTER }));
    await bob.xmpp.iqCaller.get(xml("query", { xmlns: NS_ROSTER }));
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));

    // Roster add: the push reaches alice's interested resource.
    await alice.xmpp.iqCaller.set(
      xml("query", { xmlns: NS_ROSTER }, xml("item", { jid: "bob@localhost", name: "Bob" })),
    );
    const push = await alice.waitFor(
      (el) => el.is("iq") && el.attrs.type === "set" && !!el.getChild("query", NS_ROSTER),
      "a roster push",
    );
    assert.equal(push.getChild("query", NS_ROSTER)?.getChild("item")?.attrs.jid, "bob@localhost");

    // alice → bob subscription request; bob approves; and the other way round.
    await alice.send(xml("presence", { to: "bob@localhost", type: "subscribe" }));
    const request = await bob.waitFor(
      isPresenceFrom("alice@localhost", "subscribe"),
      "alice's request",
    );
    assert.equal(request.attrs.from, "alice@localhost");
    await bob.send(xml("presence", { to: "alice@localhost", type: "subscribed" }));
    await alice.waitFor(
      isPresenceFrom("alice@localhost".replace("alice", "bob"), "subscribed"),
      "subscribed",
    );
    // With `to` subscription alice now gets bob's presence.
    await alice.waitFor(isPresenceFrom("bob@localhost", undefined), "bob's presence");

    await bob.send(xml("presence", { to: "alice@localhost", type: "subscribe" }));
    await alice.waitFor(isPresenceFrom("bob@localhost", "subscribe"), "bob's request");
    await alice.send(xml("presence", { to: "bob@localhost", type: "subscribed" }));
    await bob.waitFor(isPresenceFrom("alice@localhost", undefined), "alice's presence");

    const roster = await alice.xmpp.iqCaller.get(xml("query", { xmlns: NS_ROSTER }));
    const item = roster.getChildren("item").find((i) => i.attrs.jid === "bob@localhost");
    assert.equal(item?.attrs.subscription, "both");

    // A presence change travels both ways.
    await alice.send(xml("presence", {}, xml("show", {}, "away")));
    const away = await bob.waitFor(
      (el) => isPresenceFrom("alice@localhost")(el) && el.getChildText("show") === "away",
      "alice's away presence",
    );
    assert.equal(away.attrs.from, alice.jid);
  });

  it("broadcasts unavailable when a contact's socket drops without a word", async () => {
    const alice = await login(edge1, "alice");
    const bob = await login(edge2, "bob");
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));
    await alice.waitFor(isPresenceFrom("bob@localhost", undefined), "bob's presence");
    bob.kill();
    const gone = await alice.waitFor(
      isPresenceFrom("bob@localhost", "unavailable"),
      "bob's unavailable",
      10000,
    );
    assert.match(gone.attrs.from, /^bob@localhost\//);
  });

  it("chats both ways, and stamps from so a forged sender never reaches bob", async () => {
    const alice = await login(edge1, "alice", { resource: "desk" });
    const bob = await login(edge2, "bob", { resource: "phone" });
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));

    await alice.send(
      xml("message", { to: "bob@localhost", type: "chat" }, xml("body", {}, "hi bob")),
    );
    const m1 = await bob.waitFor(isMessageFrom("alice@localhost", "hi bob"), "alice's message");
    assert.equal(m1.attrs.from, "alice@localhost/desk");
    await bob.send(
      xml("message", { to: m1.attrs.from, type: "chat" }, xml("body", {}, "hi alice")),
    );
    const m2 = await alice.waitFor(isMessageFrom("bob@localhost", "hi alice"), "bob's reply");
    assert.equal(m2.attrs.from, "bob@localhost/phone");

    await alice.send(
      xml(
        "message",
        { to: "bob@localhost/phone", from: "carol@localhost/x", type: "chat" },
        xml("body", {}, "forged"),
      ),
    );
    const m3 = await bob.waitFor(isMessageFrom("alice@localhost", "forged"), "the forged message");
    assert.equal(m3.attrs.from, "alice@localhost/desk");
    assert.ok(
      !bob.inbox.some((el) => el.attrs.from?.startsWith("carol@")),
      "nothing claims to be carol",
    );
  });

  it("stores a message for an offline user and delivers it with a delay at initial presence", async () => {
    const alice = await login(edge1, "alice");
    await alice.send(
      xml("message", { to: "dave@localhost", type: "chat" }, xml("body", {}, "while you were out")),
    );
    await alice.ping(); // processed and stored before dave logs in
    const dave = await login(edge2, "dave");
    assert.equal(
      dave.inbox.filter((el) => el.is("message")).length,
      0,
      "nothing before initial presence",
    );
    await dave.send(xml("presence"));
    const stored = await dave.waitFor(
      isMessageFrom("alice@localhost", "while you were out"),
      "the offline message",
    );
    const delay = stored.getChild("delay", "urn:xmpp:delay");
    assert.ok(delay, "has an XEP-0203 delay");
    assert.equal(delay.attrs.from, "localhost");
    assert.ok(!Number.isNaN(Date.parse(delay.attrs.stamp)));
  });

  it("answers ping, disco and version, and service-unavailable for unknown iqs", async () => {
    const erin = await login(edge2, "erin");
    const pong = await erin.ping("localhost");
    assert.equal(pong.attrs.type, "result");
    assert.equal(pong.attrs.from, "localhost");
    const info = await erin.xmpp.iqCaller.get(
      xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
      "localhost",
    );
    assert.equal(info.getChild("identity")?.attrs.category, "server");
    assert.ok(info.getChildren("feature").some((f) => f.attrs.var === "urn:xmpp:ping"));
    const account = await erin.xmpp.iqCaller.get(
      xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
      "frank@localhost",
    );
    assert.equal(account.getChild("identity")?.attrs.category, "account");
    const version = await erin.xmpp.iqCaller.get(
      xml("query", { xmlns: "jabber:iq:version" }),
      "localhost",
    );
    assert.equal(version.getChildText("name"), "Megaphone");
    await assert.rejects(
      erin.xmpp.iqCaller.get(xml("query", { xmlns: "urn:example:nothing" })),
      (err: Error & { condition?: string }) => err.condition === "service-unavailable",
    );
  });

  it("replaces a session that binds the same resource elsewhere with a conflict stream error", async () => {
    const first = await RawClient.connect(edge1.url);
    await first.login("frank", "frank-pw", "desk");
    const second = await login(edge2, "frank", { resource: "desk" });
    assert.equal(second.jid, "frank@localhost/desk");
    await first.waitFrame(isStreamError("conflict"), "conflict");
    await first.waitClosed();
    // Messages to the full JID now reach the new session.
    const alice = await login(edge1, "alice");
    await alice.send(
      xml("message", { to: "frank@localhost/desk", type: "chat" }, xml("body", {}, "new desk")),
    );
    await second.waitFor(isMessageFrom("alice@localhost", "new desk"), "the message");
  });

  // Issue 6 item 3: a real user's salt is stored in Redis, the same from every process and
  // under every spelling; a missing user's stand-in salt must be too, or probing tells them
  // apart. Kept last: it restarts session 2.
  it("shows a missing user one SCRAM salt through either session, in any case, after a restart", async () => {
    async function saltThrough(edge: EdgeProcess, username: string): Promise<string> {
      const raw = await RawClient.connect(edge.url);
      try {
        raw.open();
        await raw.waitFrame((f) => f.includes("<mechanisms"), "SASL features");
        const first = Buffer.from(`n,,n=${username},r=probe`).toString("base64");
        raw.send(
          `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="SCRAM-SHA-256">${first}</auth>`,
        );
        const challenge = await raw.waitFrame((f) => f.startsWith("<challenge"), "challenge");
        const serverFirst = Buffer.from(/>([^<]+)</.exec(challenge)?.[1] ?? "", "base64");
        return serverFirst.toString("utf8").split(",").slice(1).join(",");
      } finally {
        raw.ws.close();
      }
    }
    const viaOne = await saltThrough(edge1, "nobody");
    assert.match(viaOne, /^s=[A-Za-z0-9+/]{22}==,i=4096$/);
    assert.equal(await saltThrough(edge2, "nobody"), viaOne, "session 2 shows session 1's salt");
    assert.equal(await saltThrough(edge2, "NoBody"), viaOne, "any spelling of the JID");
    await session2.stop();
    session2 = await mesh.session("s2", "4-7");
    assert.equal(await saltThrough(edge2, "nobody"), viaOne, "after session 2 restarted");
  });
});
