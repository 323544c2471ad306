// XEP-0198 in the session shell, against the real session tier on Redis with the test in the
// edge's place (session-harness.ts), so it can produce what an edge would only in a failure:
// a stanza given back as undelivered, a client that never acknowledges. Every stanza is
// counted: delivered once, stored offline, never both.
import assert from "node:assert/strict";
import type { Config } from "../../services/shared/config.js";
import { parseConnId } from "../../services/shared/conn-id.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { until } from "../helpers/poll.js";
import { startRedis, connect, type RedisServer } from "../helpers/redis-server.js";
import { OPEN_FRAME, SessionHarness, plainAuth } from "../helpers/session-harness.js";

const SM = "urn:xmpp:sm:3";
const KEYS = redisKeys();

describe("stream management in the session shell (XEP-0198)", function () {
  this.timeout(20000);
  let server: RedisServer;
  let harness: SessionHarness | undefined;
  let db = 0;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
  });

  async function start(config: Partial<Config> = {}) {
    db++;
    harness = await SessionHarness.create({ redis: `${server.url}/${db}`, config });
    await harness.startSession("s1");
    await harness.addUser("alice@localhost", "pw");
    await harness.addUser("bob@localhost", "pw");
    return harness;
  }

  /** alice/phone on shard 0 with resumable stream management; returns its connection and id. */
  async function aliceWithSm(h: SessionHarness) {
    const c = h.connId(0);
    await h.login(c, "alice", "pw", "phone");
    await h.send(c, `<enable xmlns="${SM}" resume="true"/>`);
    const enabled = await h.waitFrame(c, (f) => f.startsWith("<enabled"), "<enabled/>");
    return { c, id: /id="([^"]+)"/.exec(enabled)?.[1] as string };
  }

  function message(n: number): string {
    return `<message xmlns="jabber:client" to="alice@localhost/phone" type="chat" id="m${n}"><body>m${n}</body></message>`;
  }

  it("hibernates on a stanza given back as undelivered, and resends it once on resume", async () => {
    const h = await start();
    const { c, id } = await aliceWithSm(h);
    const bob = h.connId(1);
    await h.login(bob, "bob", "pw", "pc");
    await h.send(bob, message(1));
    const delivered = await h.waitFrame(c, (f) => f.includes('id="m1"'), "m1");
    // The edge could not hand it over: it comes back, and the session keeps it in the queue.
    await h.backend.bus.toShard(0, { k: "undelivered", c, e: "e1", d: delivered });
    const admin = connect(`${server.url}/${db}`);
    try {
      await until(
        async () => (await admin.hget(KEYS.snapshot(0), c))?.includes("hibernateUntilMs") === true,
        "the hibernation saved",
      );
      assert.equal(await h.backend.offline.count("alice@localhost"), 0, "not rerouted offline");
      await h.send(bob, message(2));
      await h.ping(bob, "after-m2");

      // A new socket on another shard resumes: the session moves to it.
      const c2 = h.connId(2);
      await h.open(c2);
      await h.send(c2, OPEN_FRAME);
      await h.waitFrame(c2, (f) => f.includes("<mechanism>PLAIN<"), "SASL features");
      await h.send(c2, plainAuth("alice", "pw"));
      await h.waitFrame(c2, (f) => f.startsWith("<success"), "SASL success");
      await h.send(c2, OPEN_FRAME);
      await h.waitFrame(c2, (f) => f.includes(`<sm xmlns="${SM}"/>`), "the sm feature");
      await h.send(c2, `<resume xmlns="${SM}" previd="${id}" h="0"/>`);
      const rename = await h.waitPacket((p) => p.k === "rename" && p.c === c2, "the rename");
      const c3 = rename.k === "rename" ? rename.d : "";
      assert.equal(parseConnId(c3).shard, 0, "the new id names the session's shard");
      await h.waitFrame(c3, (f) => f.includes('id="m2"'), "m2 resent");
      assert.deepEqual(
        h.frames(c3).map((f) => /^<(\w+)/.exec(f)?.[1] + (/id="(m\d)"/.exec(f)?.[1] ?? "")),
        ["resumed", "messagem1", "messagem2"],
      );
      // Nothing else went to the old id, and nothing offline: each message once.
      assert.equal(h.frames(c).filter((f) => f.includes('id="m2"')).length, 0);
      assert.equal(await h.backend.offline.count("alice@localhost"), 0);
      // A copy that comes back late for the old id (a dead edge's inbox recovered after the
      // resume) is dropped: the queue saw to it.
      await h.backend.bus.toShard(0, { k: "undelivered", c, e: "e1", d: delivered });
      await h.ping(c3, "after-the-copy");
      await until(async () => {
        const [pending] = (await admin.xpending(KEYS.shardInbox(0), "session")) as [number];
        return pending === 0;
      }, "the late copy applied");
      assert.equal(h.frames(c3).filter((f) => f.includes('id="m1"')).length, 1);
      assert.equal(await h.backend.offline.count("alice@localhost"), 0);
      // The old connection's snapshot goes once the moved one is saved.
      await until(
        async () => (await admin.hget(KEYS.snapshot(0), c)) === null,
        "old snapshot gone",
      );
      assert.ok(await admin.hget(KEYS.snapshot(0), c3));
    } finally {
      admin.disconnect();
    }
  });

  it("ends a session past smMaxUnackedStanzas and stores what was not acknowledged", async () => {
    const h = await start({ smMaxUnackedStanzas: 8 });
    const { c } = await aliceWithSm(h);
    const bob = h.connId(1);
    await h.login(bob, "bob", "pw", "pc");
    for (let n = 1; n <= 4; n++) await h.send(bob, message(n));
    await h.waitFrame(c, (f) => f.includes('id="m4"'), "m4");
    // The server asks for acks every quarter of the bound (§4 <r/>): after m2 and m4.
    await until(
      () => h.frames(c).filter((f) => f === `<r xmlns="${SM}"/>`).length === 2,
      "two ack requests",
    );
    await h.send(c, `<a xmlns="${SM}" h="4"/>`);
    for (let n = 5; n <= 13; n++) await h.send(bob, message(n));
    await h.waitFrame(c, (f) => f.includes("<policy-violation"), "the stream error");
    await until(
      async () => (await h.backend.offline.count("alice@localhost")) === 9,
      "the 9 unacked messages offline",
    );
    const live = h.frames(c).filter((f) => f.startsWith("<message")).length;
    console.log(
      `      sent 13: acked 4, unacked 9 (written ${live - 4} before the bound), stored offline ${await h.backend.offline.count("alice@localhost")}`,
    );
    // The 13th, counted in the unit that ended the session, was never stored in a queue: no
    // queue outlives the session (a late store of it would leave one behind for good).
    const admin = connect(`${server.url}/${db}`);
    try {
      await until(async () => (await admin.keys("*:sm:*")).length === 0, "no queue left");
      await h.ping(bob, "after-the-end");
      assert.deepEqual(await admin.keys("*:sm:*"), []);
    } finally {
      admin.disconnect();
    }
  });

  it("checks an idle session with <r/>, not a counted ping: an <a/> keeps it, no answer ends it", async () => {
    const h = await start({ clientPingIntervalMs: 500, clientPingTimeoutMs: 300 });
    const c = h.connId(0);
    await h.login(c, "alice", "pw", "phone");
    await h.send(c, `<enable xmlns="${SM}"/>`);
    await h.waitFrame(c, (f) => f.startsWith("<enabled"), "<enabled/>");
    const ackRequest = `<r xmlns="${SM}"/>`;
    const sinceEnabled = () => {
      const frames = h.frames(c);
      return frames.slice(frames.findIndex((f) => f.startsWith("<enabled")) + 1);
    };
    const admin = connect(`${server.url}/${db}`);
    try {
      await h.waitFrame(c, (f) => f === ackRequest, "the server's <r/>");
      // The client read no stanza since <enabled/>: its h is 0, and so must the server's count be.
      const answered = await h.send(c, `<a xmlns="${SM}" h="0"/>`);
      const stored = async () =>
        JSON.parse((await admin.hget(KEYS.snapshot(0), c)) ?? "{}") as {
          lastEntryId?: string;
          ping?: unknown;
          sm?: { sent: number };
        };
      await until(
        async () => (await stored()).lastEntryId === answered,
        "the answer applied and stored",
      );
      const afterAnswer = await stored();
      // Asked again after the next silence: the answer kept it (unanswered, the session would
      // have ended clientPingTimeoutMs after the first <r/>).
      await until(
        () => sinceEnabled().filter((f) => f === ackRequest).length === 2,
        "a second <r/>",
      );
      const endedEarly = sinceEnabled().filter((f) => f.includes("<stream:error"));
      // Unanswered: the session ends at the pinger's deadline.
      await h.waitFrame(c, (f) => f.includes("<connection-timeout"), "connection-timeout");
      await h.waitPacket((p) => p.k === "close" && p.c === c, "the socket closed");
      const frames = sinceEnabled();
      assert.deepEqual(endedEarly, [], "not ended while it answered");
      assert.equal(afterAnswer.sm?.sent, 0, "nothing counted");
      assert.equal(afterAnswer.ping, undefined, "the <a/> answered the check");
      assert.deepEqual(
        frames.filter((f) => /^<(message|presence|iq)[\s/>]/.test(f)),
        [],
        "no stanza (no XEP-0199 ping) was sent",
      );
    } finally {
      admin.disconnect();
    }
  });
});
