// The mesh on a real Redis Cluster (three primaries, test/helpers/redis-cluster.ts): two edges
// and two session processes reach it through a redis+cluster:// URL, and real @xmpp/client
// users log in, manage rosters and presence, chat across shards, get offline messages and
// lose an edge to kill -9 (its inbox recovered through the cluster), every message counted.
// Afterwards no command may have crossed slots: the nodes refused none with CROSSSLOT and no
// process logged ioredis' own refusal of a cross-slot pipeline.
import assert from "node:assert/strict";
import { createRedis } from "../../services/shared/redis/client.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { accountFor, assertAccounted } from "../helpers/accounting.js";
import { until } from "../helpers/poll.js";
import { Mesh, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { crossSlotErrors, keysPerNode, type RedisCluster } from "../helpers/redis-cluster.js";
import { RawClient } from "../helpers/raw-client.js";
import { report } from "../helpers/report.js";
import {
  TestUser,
  isMessageFrom,
  isPresenceFrom,
  xml,
  loginAs,
  type LoginOptions,
} from "../helpers/xmpp-client.js";

const NS_ROSTER = "jabber:iq:roster";
/** The shards of session 1 and 2, and of the edges that put connections on them. */
const SHARD_COUNT = 8;
const SHARDS = ["0-3", "4-7"] as const;
/** Messages each way in the chat scenario, and stored for an offline user. */
const CHAT_MESSAGES = 25;
const OFFLINE_MESSAGES = 10;
/** Edge liveness: a killed edge is found dead within about a second and a half. */
const HEARTBEAT_INTERVAL_MS = 250;
const HEARTBEAT_TTL_MS = 1500;
/** alice's sending rate while bob's edge dies: 5 messages a second. */
const SEND_INTERVAL_MS = 200;
const KEYS = redisKeys();

const bodyOf = (frame: string) => /<body>(k-\d+)<\/body>/.exec(frame)?.[1];

async function sessionConnections(session: SessionProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${session.httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("megaphone_session_connections "));
  return Number(line?.split(" ")[1] ?? NaN);
}

/** The numbered bodies `sender` sent to `user`, in arrival order (left in its inbox). */
function bodiesFrom(user: TestUser, sender: string, prefix: string): string[] {
  return user.inbox
    .filter(isMessageFrom(sender))
    .map((el) => el.getChildText("body") ?? "")
    .filter((body) => body.startsWith(prefix));
}

/** Counts of one batch of numbered messages: received once, missing, duplicated, out of order. */
function account(received: string[], prefix: string, sent: number) {
  const expected = Array.from({ length: sent }, (_, i) => `${prefix}${i}`);
  const unique = new Set(received);
  return {
    sent,
    received: unique.size,
    missing: expected.filter((b) => !unique.has(b)).length,
    duplicated: received.length - unique.size,
    inOrder: received.join() === expected.join(),
  };
}

describe("e2e: the mesh on a Redis Cluster of three primaries", function () {
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
    mesh = await Mesh.start({
      shardCount: SHARD_COUNT,
      redis: "cluster",
      env: {
        MEGAPHONE_EDGE_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
        MEGAPHONE_EDGE_HEARTBEAT_TTL_MS: String(HEARTBEAT_TTL_MS),
        // @xmpp/client resumes streams (XEP-0198): a dropped one hibernates this long first.
        MEGAPHONE_RESUMPTION_TIMEOUT_MS: "1000",
      },
    });
    [session1, session2] = await Promise.all([
      mesh.session("s1", SHARDS[0]),
      mesh.session("s2", SHARDS[1]),
    ]);
    [edge1, edge2] = await Promise.all([mesh.edge("e1", SHARDS[0]), mesh.edge("e2", SHARDS[1])]);
    for (const name of ["alice", "bob", "carol", "dave"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
  });

  afterEach(async () => {
    await Promise.all(users.splice(0).map((u) => u.stop()));
  });

  after(async () => mesh?.stop());

  it("logs in with SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN on both shards", async () => {
    const a = await login(edge1, "alice", { mechanism: "SCRAM-SHA-256", resource: "sha256" });
    const b = await login(edge2, "bob", { mechanism: "SCRAM-SHA-1", resource: "sha1" });
    const c = await login(edge2, "carol", { mechanism: "PLAIN", resource: "plain" });
    assert.equal(a.jid, "alice@localhost/sha256");
    assert.equal(b.jid, "bob@localhost/sha1");
    assert.equal(c.jid, "carol@localhost/plain");
    assert.equal(await sessionConnections(session1), 1, "alice is on session 1");
    assert.equal(await sessionConnections(session2), 2, "bob and carol are on session 2");
    await assert.rejects(
      TestUser.connect({ service: edge1.url, username: "bob", password: "wrong" }),
      /not-authorized/,
    );
  });

  it("subscribes both ways with roster pushes, then sees presence both ways", async () => {
    const alice = await login(edge1, "alice");
    const bob = await login(edge2, "bob");
    await alice.xmpp.iqCaller.get(xml("query", { xmlns: NS_ROSTER }));
    await bob.xmpp.iqCaller.get(xml("query", { xmlns: NS_ROSTER }));
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));

    await alice.xmpp.iqCaller.set(
      xml("query", { xmlns: NS_ROSTER }, xml("item", { jid: "bob@localhost", name: "Bob" })),
    );
    const push = await alice.waitFor(
      (el) => el.is("iq") && el.attrs.type === "set" && !!el.getChild("query", NS_ROSTER),
      "a roster push",
    );
    assert.equal(push.getChild("query", NS_ROSTER)?.getChild("item")?.attrs.jid, "bob@localhost");

    await alice.send(xml("presence", { to: "bob@localhost", type: "subscribe" }));
    await bob.waitFor(isPresenceFrom("alice@localhost", "subscribe"), "alice's request");
    await bob.send(xml("presence", { to: "alice@localhost", type: "subscribed" }));
    await alice.waitFor(isPresenceFrom("bob@localhost", "subscribed"), "subscribed");
    await alice.waitFor(isPresenceFrom("bob@localhost", undefined), "bob's presence");

    await bob.send(xml("presence", { to: "alice@localhost", type: "subscribe" }));
    await alice.waitFor(isPresenceFrom("bob@localhost", "subscribe"), "bob's request");
    await alice.send(xml("presence", { to: "bob@localhost", type: "subscribed" }));
    await bob.waitFor(isPresenceFrom("alice@localhost", undefined), "alice's presence");

    const roster = await alice.xmpp.iqCaller.get(xml("query", { xmlns: NS_ROSTER }));
    const item = roster.getChildren("item").find((i) => i.attrs.jid === "bob@localhost");
    assert.equal(item?.attrs.subscription, "both");

    await alice.send(xml("presence", {}, xml("show", {}, "away")));
    const away = await bob.waitFor(
      (el) => isPresenceFrom("alice@localhost")(el) && el.getChildText("show") === "away",
      "alice's away presence",
    );
    assert.equal(away.attrs.from, alice.jid);
    bob.kill();
    await alice.waitFor(isPresenceFrom("bob@localhost", "unavailable"), "bob's unavailable", 10000);
  });

  it("chats both ways across shards: every message once, in order", async () => {
    const alice = await login(edge1, "alice", { resource: "desk" });
    const bob = await login(edge2, "bob", { resource: "phone" });
    await alice.send(xml("presence"));
    await bob.send(xml("presence"));
    const chat = (from: TestUser, to: string, prefix: string) =>
      Promise.all(
        Array.from({ length: CHAT_MESSAGES }, (_, i) =>
          from.send(xml("message", { to, type: "chat" }, xml("body", {}, `${prefix}${i}`))),
        ),
      );
    await Promise.all([
      chat(alice, "bob@localhost/phone", "a2b-"),
      chat(bob, "alice@localhost/desk", "b2a-"),
    ]);
    await until(
      () =>
        bodiesFrom(bob, "alice@localhost", "a2b-").length >= CHAT_MESSAGES &&
        bodiesFrom(alice, "bob@localhost", "b2a-").length >= CHAT_MESSAGES,
      "every chat message",
      10000,
    );
    // Anything sent twice would have arrived before a ping sent after it.
    await Promise.all([alice.ping(), bob.ping()]);
    const toBob = account(bodiesFrom(bob, "alice@localhost", "a2b-"), "a2b-", CHAT_MESSAGES);
    const toAlice = account(bodiesFrom(alice, "bob@localhost", "b2a-"), "b2a-", CHAT_MESSAGES);
    report(`alice → bob: ${JSON.stringify(toBob)}`);
    report(`bob → alice: ${JSON.stringify(toAlice)}`);
    for (const counts of [toBob, toAlice]) {
      assert.equal(counts.missing, 0);
      assert.equal(counts.duplicated, 0);
      assert.ok(counts.inOrder, "in the order sent");
    }
  });

  it("stores messages for an offline user and delivers each once at initial presence", async () => {
    const alice = await login(edge1, "alice");
    for (let i = 0; i < OFFLINE_MESSAGES; i++)
      await alice.send(
        xml("message", { to: "dave@localhost", type: "chat" }, xml("body", {}, `off-${i}`)),
      );
    await alice.ping(); // processed and stored before dave logs in
    const dave = await login(edge2, "dave");
    await dave.send(xml("presence"));
    await until(
      () => bodiesFrom(dave, "alice@localhost", "off-").length >= OFFLINE_MESSAGES,
      "every offline message",
      10000,
    );
    await dave.ping();
    const stored = dave.inbox.filter(isMessageFrom("alice@localhost"));
    assert.ok(stored.every((el) => el.getChild("delay", "urn:xmpp:delay")));
    const counts = account(bodiesFrom(dave, "alice@localhost", "off-"), "off-", OFFLINE_MESSAGES);
    report(`offline to dave: ${JSON.stringify(counts)}`);
    assert.equal(counts.missing, 0);
    assert.equal(counts.duplicated, 0);
    assert.ok(counts.inOrder, "in the order sent");

    // Taken from the queue as delivered: a second login gets nothing more.
    await dave.stop();
    const again = await login(edge1, "dave", { resource: "again" });
    await again.send(xml("presence"));
    await again.ping();
    assert.equal(again.inbox.filter(isMessageFrom("alice@localhost")).length, 0);
  });

  it("kill -9 of an edge: its inbox is recovered, and every message is delivered, stored or bounced once", async () => {
    const admin = createRedis(mesh.redis.url, "megaphone-test-admin");
    const edge3 = await mesh.edge("e3", SHARDS[1]);
    const alice = await login(edge1, "alice");
    const bob = await RawClient.connect(edge3.url);
    let bobAgain: TestUser | undefined;
    try {
      await bob.login("bob", "bob-pw", "phone");
      bob.answerPings();
      // alice and bob are subscribed both ways (above): bob's going is broadcast to her.
      bob.send("<presence xmlns='jabber:client'/>");
      await alice.send(xml("presence"));
      await alice.waitFor(isPresenceFrom("bob@localhost", undefined), "bob available");
      const sent: string[] = [];
      const send = (): Promise<void> => {
        const id = `k-${sent.length}`;
        sent.push(id);
        return alice.send(
          xml("message", { to: "bob@localhost", type: "chat", id }, xml("body", {}, id)),
        );
      };
      for (let i = 0; i < 5; i++) {
        await send();
        await bob.waitFrame((f) => bodyOf(f) === sent[i], `live message ${sent[i]}`);
      }
      // The edge has reported how far it delivered before it dies.
      let address: string | undefined;
      await until(async () => {
        address = (await admin.zrange(KEYS.edges(), "0", "-1")).find((a) => a.startsWith("e3:"));
        if (!address) return false;
        const [[lastId] = []] = await admin.xrevrange(
          KEYS.edgeInbox(address),
          "+",
          "-",
          "COUNT",
          1,
        );
        return (await admin.get(KEYS.edgeReadCursor(address))) === lastId;
      }, "edge e3's reported position");
      const killedAt = Date.now();
      await edge3.stop("SIGKILL");
      // alice goes on writing until she sees bob go, then 5 more.
      let after = 0;
      while (after < 5) {
        await send();
        if (alice.inbox.some(isPresenceFrom("bob@localhost", "unavailable"))) after++;
        assert.ok(Date.now() - killedAt < 20000, "bob never went unavailable");
        await new Promise((resolve) => setTimeout(resolve, SEND_INTERVAL_MS));
      }
      // The dead edge's keys are gone: its inbox was recovered and deleted.
      await until(
        async () => (await admin.exists(KEYS.edgeInbox(address as string))) === 0,
        "the dead edge's inbox deleted",
        10000,
      );
      bobAgain = await login(edge2, "bob", { resource: "again" });
      await bobAgain.send(xml("presence"));
      await bobAgain.ping();
      await alice.ping();
      const live = bob.frames.map(bodyOf).filter((id): id is string => id !== undefined);
      const offline = bodiesFrom(bobAgain, "alice@localhost", "k-");
      const bounced = alice.inbox
        .filter((el) => el.is("message") && el.attrs.type === "error")
        .map((el) => el.attrs.id as string);
      const accounting = accountFor(sent, {
        "delivered live": live,
        "stored offline": offline,
        bounced,
      });
      report(`kill -9: ${accounting.summary}`);
      assertAccounted(accounting);
      assert.ok(offline.length >= 5, "the messages sent after bob went are stored");
    } finally {
      bob.terminate();
      admin.disconnect();
    }
  });

  // Declared last, so it sees every command the scenarios above caused.
  it("spread the keys over the primaries, and no command crossed slots", async () => {
    const cluster = mesh.redis as RedisCluster;
    const perNode = await keysPerNode(cluster);
    const refused = await crossSlotErrors(cluster);
    const logged = mesh.services.flatMap((s) => s.flagged.map((line) => `${s.name}: ${line}`));
    report(`keys per primary: ${perNode.join(" / ")}`);
    report(`CROSSSLOT refusals: ${refused}; cross-slot errors logged: ${logged.length}`);
    assert.equal(refused, 0, "a node refused a command whose keys span slots");
    assert.deepEqual(logged, [], "a process logged a cross-slot error");
    assert.ok(perNode.filter((n) => n > 0).length >= 2, "the keys are spread over the primaries");
  });
});
