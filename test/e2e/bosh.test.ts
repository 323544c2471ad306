// XMPP over BOSH (XEP-0124 / XEP-0206) through real edge and session processes, with raw HTTP
// requests written by hand: session creation, the rid window and retries, errors, terminate,
// restart after SASL, long-polls answered by a WebSocket user's message or by `wait`, XEP-0198.
import assert from "node:assert/strict";
import {
  Mesh,
  metricValue,
  spawnService,
  waitForHttp,
  type EdgeProcess,
  type SessionProcess,
} from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { freePort } from "../helpers/redis-server.js";
import { BoshSession, bodyXml, NS_HTTPBIND, NS_XBOSH, postBody } from "../helpers/bosh-client.js";
import { TestUser, isMessageFrom, isPresenceFrom, xml } from "../helpers/xmpp-client.js";

const MAX_WAIT_SECONDS = 20;

describe("e2e: BOSH (XEP-0206)", function () {
  this.timeout(60000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let session: SessionProcess;
  let url: string;
  let serial = 0;

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 4,
      env: {
        MEGAPHONE_BOSH_MAX_WAIT_MS: String(MAX_WAIT_SECONDS * 1000),
        MEGAPHONE_MAX_STANZA_BYTES: "10000",
        MEGAPHONE_BOSH_INACTIVITY_MS: "3000",
        MEGAPHONE_BOSH_MAX_PENDING_BYTES: "16384",
        MEGAPHONE_BOSH_CORS_ORIGINS: "https://app.example",
      },
    });
    session = await mesh.session("s1", "");
    edge = await mesh.edge("e1", "");
    url = `http://127.0.0.1:${edge.port}/http-bind`;
  });

  after(async () => {
    await mesh?.stop();
  });

  /** `bosh` shard entries the session process has applied. */
  async function boshEntriesApplied(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${session.httpPort}/metrics`)).text();
    const line = text
      .split("\n")
      .find((l) => l.startsWith('megaphone_session_entries_total{kind="bosh"}'));
    return Number(line?.slice(line.lastIndexOf(" ") + 1) ?? 0);
  }

  async function newUser(): Promise<string> {
    const name = `bu${++serial}`;
    await mesh.addUser(`${name}@localhost`, "pw");
    return name;
  }

  it("creates a session: the answer carries the session attributes and the stream features", async () => {
    const bosh = await BoshSession.create(url, { wait: "600", hold: "5" });
    const attrs = bosh.creation.attrs;
    assert.match(attrs.sid, /^e1\.\d+\.[0-9a-z]+~[\w-]{20,}$/);
    assert.equal(attrs.wait, String(MAX_WAIT_SECONDS), "wait is capped to boshMaxWaitMs");
    assert.equal(attrs.hold, "1", "hold is capped to boshMaxHold");
    assert.equal(attrs.requests, "2");
    assert.equal(attrs.polling, "1");
    assert.equal(attrs.inactivity, "3");
    assert.equal(attrs.ver, "1.6");
    assert.equal(attrs.from, "localhost");
    assert.ok(attrs.authid);
    assert.equal(attrs["xmpp:version"], "1.0");
    assert.equal(attrs["xmpp:restartlogic"], "true");
    assert.equal(attrs["xmlns:xmpp"], NS_XBOSH);
    assert.equal(attrs.xmlns, NS_HTTPBIND);
    const mechanisms = bosh.creation
      .getChild("features", "http://etherx.jabber.org/streams")
      ?.getChild("mechanisms");
    assert.ok(mechanisms, bosh.creation.toString());
    assert.ok(mechanisms?.getChildren("mechanism").some((m) => m.getText() === "PLAIN"));
  });

  it("logs in (SASL, restart, bind) and answers a repeated rid with the same answer", async () => {
    const name = await newUser();
    const bosh = await BoshSession.create(url);
    const jid = await bosh.login(`${name}`, "pw", "web");
    assert.equal(jid, `${name}@localhost/web`);
    const roster = await bosh.send(
      `<iq xmlns="jabber:client" type="get" id="r1"><query xmlns="jabber:iq:roster"/></iq>`,
    );
    assert.equal(roster.body?.getChild("iq")?.attrs.id, "r1");
    // The client did not get it (say) and asks again: the same answer, applied once.
    const again = await bosh.sendRid(bosh.rid, "");
    assert.equal(again.text, roster.text);
  });

  it("terminates a session whose rid is out of the window, and knows it no more", async () => {
    const bosh = await BoshSession.create(url);
    const far = await bosh.sendRid(bosh.rid + 5);
    assert.equal(far.status, 200);
    assert.equal(far.body?.attrs.type, "terminate");
    assert.equal(far.body?.attrs.condition, "item-not-found");
    const after = await bosh.send();
    assert.equal(after.body?.attrs.condition, "item-not-found");
  });

  it("answers a wrong secret or an unknown connection with item-not-found", async () => {
    const bosh = await BoshSession.create(url, { wait: "1" });
    const [connId] = bosh.sid.split("~");
    for (const sid of [
      `${connId}~wrong-secret`,
      `${connId.replace(/\.[0-9a-z]+$/, ".zzzzzzzzz")}~x`,
    ]) {
      const answer = await postBody(url, bodyXml({ rid: String(bosh.rid + 1), sid }));
      assert.equal(answer.body?.attrs.type, "terminate", sid);
      assert.equal(answer.body?.attrs.condition, "item-not-found", sid);
    }
    // The real session is untouched by those.
    const poll = await bosh.send();
    assert.equal(poll.status, 200);
    assert.equal(poll.body?.attrs.type, undefined);
  });

  it("refuses oversize and malformed bodies at the edge with 400 bad-request", async () => {
    const big = bodyXml(
      { rid: "1" },
      `<message xmlns="jabber:client"><body>${"x".repeat(20000)}</body></message>`,
    );
    for (const text of [
      big,
      "<html/>",
      `<body xmlns="${NS_HTTPBIND}" rid="x"/>`,
      `<body rid="1"/>`,
    ]) {
      const answer = await postBody(url, text);
      assert.equal(answer.status, 400, text.slice(0, 40));
      assert.equal(answer.body?.attrs.condition, "bad-request");
    }
  });

  it("ends a session whose body is not well formed inside with bad-request", async () => {
    const bosh = await BoshSession.create(url);
    const answer = await postBody(
      url,
      `<body xmlns="${NS_HTTPBIND}" rid="${bosh.rid + 1}" sid="${bosh.sid}"><message><body></message></body>`,
    );
    assert.equal(answer.body?.attrs.type, "terminate");
    assert.equal(answer.body?.attrs.condition, "bad-request");
    assert.equal((await bosh.send()).body?.attrs.condition, "item-not-found");
  });

  it("terminates on the client's request, with its last stanzas applied", async () => {
    const name = await newUser();
    const watcher = await newUser();
    const ws = await TestUser.connect({ service: edge.url, username: watcher, password: "pw" });
    const bosh = await BoshSession.create(url);
    await bosh.login(name, "pw");
    const bye = await bosh.send(
      `<message xmlns="jabber:client" to="${ws.jid}"><body>bye</body></message>`,
      { type: "terminate" },
    );
    assert.equal(bye.body?.attrs.type, "terminate");
    assert.equal(bye.body?.attrs.condition, undefined);
    await ws.waitFor(isMessageFrom(`${name}@localhost/bosh`, "bye"), "the last message");
    assert.equal((await bosh.send()).body?.attrs.condition, "item-not-found");
    await ws.stop();
  });

  it("answers a held long-poll with a WebSocket user's message, and an idle one after wait", async () => {
    const name = await newUser();
    const other = await newUser();
    const bosh = await BoshSession.create(url, { wait: "2" });
    await bosh.login(name, "pw");
    const ws = await TestUser.connect({ service: edge.url, username: other, password: "pw" });
    const started = Date.now();
    const poll = bosh.send();
    // Sent once the poll is held: a round trip of another request would answer it.
    await ws.ping();
    const held = await metricValue(edge.port, "megaphone_edge_bosh_held_requests");
    assert.ok(held >= 1, `the edge counts the held poll (${held})`);
    await ws.send(
      xml("message", { to: `${name}@localhost/bosh`, type: "chat" }, xml("body", {}, "hi")),
    );
    const answer = await poll;
    const message = answer.body?.getChild("message");
    assert.equal(message?.getChildText("body"), "hi");
    assert.equal(message?.attrs.from, ws.jid);
    assert.ok(Date.now() - started < 2000, "answered at once, not after wait");

    const idleStart = Date.now();
    const idle = await bosh.send();
    const elapsed = Date.now() - idleStart;
    assert.equal(idle.status, 200);
    assert.equal(idle.body?.children.length, 0, idle.text);
    assert.ok(elapsed >= 1900 && elapsed < 4000, `answered after wait (${elapsed} ms)`);
    await ws.stop();
  });

  it("XEP-0198 over BOSH: enabled, <r/> answered with <a/>, unacked stanzas stored when it ends", async () => {
    const name = await newUser();
    const other = await newUser();
    const bosh = await BoshSession.create(url, { wait: "2" });
    await bosh.login(name, "pw");
    const enabled = await bosh.send(`<enable xmlns="urn:xmpp:sm:3" resume="true"/>`);
    const enabledEl = enabled.body?.getChild("enabled");
    assert.ok(enabledEl, enabled.text);
    assert.equal(
      enabledEl.attrs.resume,
      undefined,
      "BOSH sessions are not resumed: they survive edges",
    );
    // One stanza after <enable/> (the ping), so h is 1.
    const acked = await bosh.send(
      `<iq xmlns="jabber:client" type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq><r xmlns="urn:xmpp:sm:3"/>`,
    );
    assert.equal(acked.body?.getChild("a")?.attrs.h, "1", acked.text);

    const ws = await TestUser.connect({ service: edge.url, username: other, password: "pw" });
    const poll = bosh.send();
    await ws.ping();
    await ws.send(
      xml("message", { to: `${name}@localhost/bosh`, type: "chat" }, xml("body", {}, "keep me")),
    );
    const got = await poll;
    assert.equal(got.body?.getChild("message")?.getChildText("body"), "keep me");
    // Never acknowledged: the session ends, and the stanza goes to offline storage.
    const bye = await bosh.send("", { type: "terminate" });
    assert.equal(bye.body?.attrs.type, "terminate");
    const again = await TestUser.connect({ service: edge.url, username: name, password: "pw" });
    await again.send(xml("presence"));
    const redelivered = await again.waitFor(
      isMessageFrom(ws.jid, "keep me"),
      "the unacked message",
    );
    assert.ok(redelivered.getChild("delay", "urn:xmpp:delay"), "it was stored offline");
    await again.stop();
    await ws.stop();
  });
  it("applies a rid that arrives ahead of a missing one once the gap fills", async () => {
    const bosh = await BoshSession.create(url, { wait: "1" });
    const first = bosh.rid + 1;
    const applied = await boshEntriesApplied();
    const ahead = bosh.sendRid(
      first + 1,
      `<iq xmlns="jabber:client" type="get" id="second"><ping xmlns="urn:xmpp:ping"/></iq>`,
    );
    // The session has it (kept, unanswered) before the missing rid is even sent.
    await until(async () => (await boshEntriesApplied()) > applied, "the ahead rid applied");
    const inOrder = await bosh.sendRid(first, "");
    const later = await ahead;
    // Before SASL, an iq is a stream error: the empty `first` could not have caused it, so the
    // ahead body was applied right after it, and the error went to the earliest held request.
    assert.equal(inOrder.body?.attrs.type, "terminate", inOrder.text);
    assert.equal(inOrder.body?.attrs.condition, "remote-stream-error");
    assert.equal(later.body?.attrs.type, "terminate", "the ahead request ends with the session");
  });

  it("ends the stream with a terminating body carrying the <stream:error/>", async () => {
    const bosh = await BoshSession.create(url);
    // A restart before SASL: the stream is already open (RFC 6120 §4.3.3).
    const answer = await bosh.restart();
    assert.equal(answer.body?.attrs.type, "terminate");
    assert.equal(answer.body?.attrs.condition, "remote-stream-error");
    const error = answer.body?.getChild("error", "http://etherx.jabber.org/streams");
    assert.ok(error?.getChild("policy-violation"), answer.text);
  });

  it("ends a session that sends no request for `inactivity` as a lost transport", async () => {
    const name = await newUser();
    const other = await newUser();
    const ws = await TestUser.connect({ service: edge.url, username: other, password: "pw" });
    const bosh = await BoshSession.create(url, { wait: "1" });
    await bosh.login(name, "pw");
    await bosh.send(`<presence xmlns="jabber:client" to="${ws.jid}"/>`);
    await ws.waitFor(isPresenceFrom(`${name}@localhost/bosh`), "directed presence");
    // No request from now on: after 3 s (boshInactivityMs) the session ends.
    await ws.waitFor(
      isPresenceFrom(`${name}@localhost/bosh`, "unavailable"),
      "unavailable presence",
      10000,
    );
    assert.equal((await bosh.send()).body?.attrs.condition, "item-not-found");
    await ws.stop();
  });

  it("closes a client that stops collecting past boshMaxPendingBytes; nothing is lost", async () => {
    const name = await newUser();
    const other = await newUser();
    const bosh = await BoshSession.create(url, { wait: "20" });
    const ws = await TestUser.connect({ service: edge.url, username: other, password: "pw" });
    await bosh.login(name, "pw");
    const loggedInAt = Date.now();
    const count = 24; // about 24 KiB: past the 16 KiB bound with no request to answer
    for (let i = 0; i < count; i++)
      await ws.send(
        xml(
          "message",
          { to: `${name}@localhost/bosh`, type: "chat" },
          xml("body", {}, `m-${i} ${"x".repeat(1000)}`),
        ),
      );
    await ws.ping();
    // Gone well before `inactivity` (3 s) could have ended it: the bound did.
    assert.equal((await bosh.send()).body?.attrs.condition, "item-not-found");
    const elapsed = Date.now() - loggedInAt;
    assert.ok(elapsed < 2500, `ended by the bound, not by inactivity (${elapsed} ms)`);
    // Every message went to offline storage, once: the queued ones when the session ended.
    const again = await TestUser.connect({ service: edge.url, username: name, password: "pw" });
    await again.send(xml("presence"));
    for (let i = 0; i < count; i++)
      await again.waitFor(isMessageFrom(ws.jid, `m-${i} ${"x".repeat(1000)}`), `m-${i}`);
    await again.expectNone(
      (el) => el.is("message"),
      () => again.ping(),
    );
    await again.stop();
    await ws.stop();
  });

  it("continues a BOSH session, and its held long-poll, when its session process is killed and restarted", async () => {
    const name = await newUser();
    const other = await newUser();
    const bosh = await BoshSession.create(url, { wait: "2" });
    await bosh.login(name, "pw");
    const ws = await TestUser.connect({ service: edge.url, username: other, password: "pw" });
    const to = `${name}@localhost/bosh`;
    const message = (body: string) => xml("message", { to, type: "chat" }, xml("body", {}, body));
    const sent: string[] = [];
    let poll = bosh.send();
    // Killed at once, whatever the session process has stored by then: the poll may still be
    // in the shard inbox, and messages too (a restart longer than `inactivity` once ended the
    // session here before its pending poll was applied: shard-host.ts now counts the time
    // without an owner as activity).
    for (let i = 1; i <= 3; i++) {
      sent.push(`before ${i}`);
      await ws.send(message(`before ${i}`));
    }
    await session.stop("SIGKILL");
    // While no session runs, the edge keeps the poll and takes the messages into the inbox.
    for (let i = 1; i <= 3; i++) {
      sent.push(`during ${i}`);
      await ws.send(message(`during ${i}`));
    }
    session = await mesh.session("s1", "");
    sent.push("marker");
    await ws.send(message("marker"));
    const received: string[] = [];
    for (let polls = 0; polls < 30 && !received.includes("marker"); polls++) {
      const answer = await poll;
      // 503: the edge gave up holding it (no session answered in time); the same rid again.
      if (answer.status === 503) {
        poll = bosh.sendRid(bosh.rid);
        continue;
      }
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.body?.attrs.type, undefined, answer.text);
      for (const m of answer.body?.getChildren("message") ?? [])
        received.push(m.getChildText("body") ?? "");
      if (!received.includes("marker")) poll = bosh.send();
    }
    const once = sent.filter((b) => received.filter((r) => r === b).length === 1);
    const lost = sent.filter((b) => !received.includes(b));
    const duplicates = received.length - new Set(received).size;
    console.log(
      `      sent ${sent.length}, delivered once ${once.length}, lost ${lost.length}, duplicates ${duplicates}`,
    );
    assert.deepEqual(received, sent, "every message once, in order");
    await ws.stop();
  });

  it("answers CORS preflights and requests from allowed origins only", async () => {
    const preflight = await fetch(url, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    assert.equal(preflight.status, 200);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example");
    assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /POST/);
    const other = await fetch(url, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example" },
    });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const post = await fetch(url, {
      method: "POST",
      headers: { origin: "https://app.example" },
      body: "<nope/>",
    });
    assert.equal(post.status, 400);
    assert.equal(post.headers.get("access-control-allow-origin"), "https://app.example");
  });
});

describe("e2e: BOSH in all-in-one mode (npm start)", function () {
  this.timeout(60000);

  it("serves /http-bind with the in-process bus: login and a roster fetch", async () => {
    const port = await freePort();
    const service = spawnService(
      "all-in-one",
      ["start", "--host", "127.0.0.1", "--port", String(port), "--user", "carol@localhost:pw"],
      { MEGAPHONE_PLAIN_REQUIRES_TLS: "false" },
    );
    try {
      await waitForHttp(`http://127.0.0.1:${port}/readyz`, service);
      const bosh = await BoshSession.create(`http://127.0.0.1:${port}/http-bind`);
      assert.equal(await bosh.login("carol", "pw", "aio"), "carol@localhost/aio");
      const roster = await bosh.send(
        `<iq xmlns="jabber:client" type="get" id="r"><query xmlns="jabber:iq:roster"/></iq>`,
      );
      assert.equal(roster.body?.getChild("iq")?.attrs.type, "result", roster.text);
    } finally {
      await service.stop("SIGKILL");
    }
  });
});
