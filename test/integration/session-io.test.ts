// The session tier's I/O shell (session/io) with the real core, wired by startSession over the
// backend from createBackend, and the test in the edge's place (helpers/session-harness.ts):
// batches whose effects fail are redelivered and applied once, stale routes are cleaned up,
// closed connections stay closed, and the entries of a dead session member are not lost.
// createBackend uses the default key prefix, so each Redis test gets a database of its own.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { parse } from "ltx";
import { compareEntryIds, type ShardEntry } from "../../services/shared/bus/packets.js";
import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { NS_CLIENT, NS_STANZA_ERRORS } from "../../services/shared/ns.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { parseFrame } from "../../services/session/core/frame-parser.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { LogCapture } from "../helpers/log-capture.js";
import { until } from "../helpers/poll.js";
import {
  connectAdmin,
  pendingCount,
  restoreDefault,
  revokeFromDefault,
} from "../helpers/redis-admin.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import {
  OPEN_FRAME,
  SessionHarness,
  plainAuth,
  type HarnessOptions,
} from "../helpers/session-harness.js";
import { testBusOptions } from "../helpers/test-bus.js";

const BATCH_FAILED = "shard batch failed; it stays pending";
const KEYS = redisKeys();
const SHARDS = [0, 1, 2, 3];

const isSaslFailure = (f: string) => f.startsWith("<failure") && f.includes("<not-authorized");
const isStreamError = (f: string) => f.includes("<stream:error");

describe("session I/O against the real core", function () {
  this.timeout(20000);
  let server: RedisServer;
  /** An admin connection to the current test's database (Redis tests only: see adminLive). */
  let admin: Redis;
  let adminLive = false;
  let db = 0;
  let harness: SessionHarness | undefined;
  let cleanups: (() => unknown)[] = [];

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    if (adminLive) await restoreDefault(admin);
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
    await harness?.stop();
    harness = undefined;
    if (adminLive) admin.disconnect();
    adminLive = false;
  });

  /** A harness on a fresh Redis database (with an admin connection to it), or in memory. */
  async function start(
    backend: "redis" | "memory",
    options: Omit<HarnessOptions, "redis"> = {},
  ): Promise<SessionHarness> {
    if (backend === "redis") {
      db++;
      assert.ok(db < 16, "out of Redis databases: use fewer Redis tests or flush one");
      admin = await connectAdmin(server.url, db);
      adminLive = true;
    }
    harness = await SessionHarness.create({
      ...options,
      redis: backend === "redis" ? `${server.url}/${db}` : undefined,
    });
    return harness;
  }

  /** A Redis harness with a session, its logs captured, and alice bound on shard `shard`. */
  async function aliceLoggedIn(shard: number, resource: string) {
    const capture = new LogCapture();
    const h = await start("redis", { log: capture.logger });
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    const c = h.connId(shard);
    await h.login(c, "alice", "alice-pw", resource);
    return { h, capture, c };
  }

  async function pendingEverywhere(): Promise<number> {
    let total = 0;
    for (const shard of SHARDS) {
      if ((await admin.exists(KEYS.shardInbox(shard))) === 1)
        total += await pendingCount(admin, KEYS.shardInbox(shard));
    }
    return total;
  }

  /**
   * A session member that takes entries from `shards`' inboxes and dies holding them: its
   * handler never finishes and its reader is gone. Resolves with what it took.
   */
  async function deadConsumer(
    h: SessionHarness,
    name: string,
    take: number,
    shards = [0],
  ): Promise<ShardEntry[]> {
    const bus = new RedisBus(testBusOptions(h.config.redis, KEYS, { readCount: 100 }));
    const controller = new AbortController();
    const taken: ShardEntry[] = [];
    let enough!: () => void;
    const tookEnough = new Promise<void>((resolve) => (enough = resolve));
    let abandon: ((err: Error) => void) | undefined;
    const done = bus.consumeShards(
      shards,
      name,
      (batch) => {
        taken.push(...batch);
        if (taken.length >= take) enough();
        return new Promise<void>((_, reject) => (abandon = reject));
      },
      controller.signal,
    );
    cleanups.push(async () => {
      controller.abort();
      abandon?.(new Error("abandoned"));
      await done;
      await bus.close();
    });
    await tookEnough;
    controller.abort();
    return taken;
  }

  it("redelivers a batch whose effects fail to store and applies it once", async () => {
    const capture = new LogCapture();
    const h = await start("redis", { log: capture.logger, config: { maxAuthFailures: 3 } });
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    const c = h.connId(0);
    await h.open(c);
    await h.send(c, OPEN_FRAME);
    await h.waitFrame(c, (f) => f.includes("<mechanism>PLAIN<"), "SASL features");
    // Its snapshot is saved after the features went out: wait for the batch's ack.
    await until(async () => (await pendingEverywhere()) === 0, "the open acknowledged");

    // Snapshots cannot be saved: every batch that touches the connection fails after its
    // frames went out, and is rolled back and delivered again.
    await revokeFromDefault(admin, "hset");
    await h.send(c, plainAuth("alice", "wrong-1"));
    await h.send(c, plainAuth("alice", "wrong-2"));
    await capture.waitFor(BATCH_FAILED, 3);
    await h.waitFrame(c, isSaslFailure, "a SASL failure");
    assert.ok((await pendingEverywhere()) > 0, "the failing batch is pending");
    await restoreDefault(admin);
    await until(async () => (await pendingEverywhere()) === 0, "every entry acknowledged");

    // Each attempt was applied from the state before it: two failures, not one per delivery
    // (three would have closed the stream with policy-violation, maxAuthFailures = 3).
    const snapshot = await admin.hget(KEYS.snapshot(0), c);
    assert.ok(snapshot, "the connection's snapshot is saved");
    const state = JSON.parse(snapshot) as { authFailures: number; stage: string };
    assert.equal(state.authFailures, 2);
    assert.equal(state.stage, "opened");
    const frames = h.frames(c);
    assert.ok(frames.filter(isSaslFailure).length >= 2, frames.join("\n"));
    assert.deepEqual(frames.filter(isStreamError), []);

    // The connection goes on from there: a correct login, a bind and a ping round trip.
    await h.send(c, plainAuth("alice", "alice-pw"));
    await h.waitFrame(c, (f) => f.startsWith("<success"), "SASL success");
    await h.send(c, OPEN_FRAME);
    await h.waitFrame(c, (f) => f.includes("xmpp-bind"), "bind feature");
    await h.send(
      c,
      '<iq xmlns="jabber:client" type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>r</resource></bind></iq>',
    );
    await h.waitFrame(c, (f) => f.includes('id="b1"') && f.includes("alice@localhost/r"), "bind");
    assert.match(await h.ping(c, "p1"), /type="result"/);
  });

  it("keeps offline messages stored until their delivery is stored", async () => {
    const capture = new LogCapture();
    const h = await start("redis", { log: capture.logger });
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
    const alice = h.connId(0);
    const bob = h.connId(1);
    await h.login(alice, "alice", "alice-pw", "desk");
    await h.login(bob, "bob", "bob-pw", "phone"); // bound, not available: messages are stored
    await h.send(
      alice,
      '<message xmlns="jabber:client" to="bob@localhost" type="chat" id="m1"><body>kept</body></message>',
    );
    await until(async () => (await h.backend.offline.count("bob@localhost")) === 1, "stored");
    await until(async () => (await pendingEverywhere()) === 0, "every entry acknowledged");

    // Bob comes online while nothing can be written to his edge's inbox (every other key can):
    // the delivery cannot be stored, the batch fails again and again, and the message must
    // stay stored meanwhile.
    await admin.call(
      "ACL",
      "SETUSER",
      "default",
      "resetkeys",
      "~mp:{*",
      `%R~${KEYS.edgeInbox("*")}`,
    );
    await h.send(bob, '<presence xmlns="jabber:client"/>');
    await capture.waitFor(BATCH_FAILED, 2);
    assert.equal(await h.backend.offline.count("bob@localhost"), 1);
    await restoreDefault(admin);
    await h.waitFrame(bob, (f) => f.includes("<body>kept</body>"), "the offline message");
    await until(async () => (await h.backend.offline.count("bob@localhost")) === 0, "removed");
  });

  it("ends a connection whose edge is gone, so later messages are stored offline", async () => {
    const h = await start("memory");
    const session = await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
    const alice = h.connId(0);
    const bob = h.connId(1);
    await h.login(alice, "alice", "alice-pw", "desk");
    await h.login(bob, "bob", "bob-pw", "phone");
    await h.send(bob, '<presence xmlns="jabber:client"/>');
    await h.ping(bob, "p0");
    assert.equal(session.connections(), 2);

    await h.killEdge();
    // Nothing can be written to the edge any more: the first write tells the session so.
    await h.backend.bus.toShard(0, {
      k: "data",
      c: alice,
      e: "e1",
      d: '<message xmlns="jabber:client" to="bob@localhost" type="chat"><body>one</body></message>',
    });
    await until(
      async () => (await h.backend.routes.list("bob@localhost")).length === 0,
      "bob ended",
    );
    assert.equal(session.connections(), 1);
    // What is sent to bob now is stored for him instead of vanishing.
    await h.backend.bus.toShard(0, {
      k: "data",
      c: alice,
      e: "e1",
      d: '<message xmlns="jabber:client" to="bob@localhost" type="chat"><body>two</body></message>',
    });
    await until(async () => (await h.backend.offline.count("bob@localhost")) === 1, "stored");
  });

  it("writes no snapshot for a message sent and delivered (nothing durable changed), and acknowledges both entries", async () => {
    const h = await start("redis");
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
    const alice = h.connId(0);
    const bob = h.connId(1);
    await h.login(alice, "alice", "alice-pw", "desk");
    await h.login(bob, "bob", "bob-pw", "phone");
    await until(async () => (await pendingEverywhere()) === 0, "the logins acknowledged");
    const snapshots = async () =>
      new Map([
        ...(await h.backend.snapshots.loadShard(0)),
        ...(await h.backend.snapshots.loadShard(1)),
      ]);
    const before = await snapshots();
    assert.equal(before.size, 2, "both connections have a snapshot");

    for (let i = 0; i < 3; i++)
      await h.send(
        alice,
        `<message xmlns="jabber:client" to="bob@localhost/phone" type="chat"><body>m${i}</body></message>`,
      );
    await h.waitFrame(bob, (f) => f.includes("<body>m2</body>"), "the last message");
    await until(async () => (await pendingEverywhere()) === 0, "every entry acknowledged");
    assert.deepEqual(await snapshots(), before, "no snapshot was written");
    // A durable change (initial presence: the resource becomes available) is saved again.
    await h.send(bob, '<presence xmlns="jabber:client"/>');
    await h.ping(bob, "p1");
    await until(
      async () => (await snapshots()).get(bob) !== before.get(bob),
      "bob's snapshot saved",
    );
    assert.equal((await snapshots()).get(alice), before.get(alice));
  });

  it("redelivers the frames of a failed batch at least once and in order", async () => {
    const { h, capture, c } = await aliceLoggedIn(1, "phone");
    // The login's last batch saves its snapshot after its answer went out: wait for its ack.
    await until(async () => (await pendingEverywhere()) === 0, "the login acknowledged");

    await revokeFromDefault(admin, "hset");
    // Roster requests: the first marks the resource interested (RFC 6121 §2.1.6), a change its
    // unit must save in a snapshot (HSET), which fails. A ping changes nothing durable: its
    // unit writes no snapshot and would not fail.
    const pings = ["q1", "q2", "q3"].map(
      (id) =>
        `<iq xmlns="jabber:client" type="get" id="${id}"><query xmlns="jabber:iq:roster"/></iq>`,
    );
    await Promise.all(pings.map((p) => h.send(c, p)));
    await capture.waitFor(BATCH_FAILED, 2);
    await restoreDefault(admin);
    await h.waitFrame(c, (f) => f.includes('id="q3"'), "the last answer");
    await until(async () => (await pendingEverywhere()) === 0, "every entry acknowledged");

    const answers = h
      .frames(c)
      .map((f) => /id="(q\d)"/.exec(f)?.[1])
      .filter((id): id is string => id !== undefined);
    // Every delivery of the batch answers from q1 on, in order; the last one completes.
    const firstSeen = answers.filter((id, i) => answers.indexOf(id) === i);
    assert.deepEqual(firstSeen, ["q1", "q2", "q3"], answers.join(" "));
    assert.equal(answers.at(-1), "q3", answers.join(" "));
    for (let i = 1; i < answers.length; i++) {
      const [prev, next] = [Number(answers[i - 1].slice(1)), Number(answers[i].slice(1))];
      assert.ok(next === prev + 1 || next <= prev, `out of order: ${answers.join(" ")}`);
    }
    assert.match(await h.ping(c, "after"), /type="result"/);
  });

  it("drops a route to a connection that no longer exists and stores the message offline", async () => {
    const h = await start("redis");
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
    const alice = h.connId(0);
    await h.login(alice, "alice", "alice-pw", "desk");

    // bob's "phone" is bound to a connection of an owned shard that the session does not hold.
    const ghost = "e1.1.ghost";
    const { routes, offline } = h.backend;
    assert.deepEqual(await routes.bind("bob@localhost", "phone", ghost, 32), { ok: true });
    await routes.update("bob@localhost", "phone", ghost, {
      presence: '<presence xmlns="jabber:client" from="bob@localhost/phone"/>',
      priority: 0,
    });

    await h.send(
      alice,
      '<message xmlns="jabber:client" type="chat" to="bob@localhost" id="m1"><body>are you there?</body></message>',
    );
    // The route may go through bob's shard inbox (local delivery waits until the session has
    // handled that inbox once), so the outcome is awaited rather than assumed after a ping.
    const stored: string[] = [];
    await until(async () => {
      stored.push(...(await offline.takeAll("bob@localhost")));
      return stored.length > 0;
    }, "the message stored offline");
    assert.deepEqual(await routes.list("bob@localhost"), [], "the stale binding is removed");
    assert.equal(stored.length, 1, `offline queue: ${stored.join("\n")}`);
    const message = parse(stored[0]);
    assert.equal(message.getChildText("body"), "are you there?");
    assert.equal(message.attrs.from, "alice@localhost/desk");
    assert.ok(message.getChild("delay", "urn:xmpp:delay"), "stored with a delay stamp");
    assert.deepEqual(
      h.frames(alice).filter((f) => f.includes('id="m1"')),
      [],
      "alice gets no error for m1",
    );
    // Not wedged: the session keeps answering.
    assert.match(await h.ping(alice, "again", 2000), /type="result"/);
  });

  it("reroutes a message from a stale higher-priority resource to a live one", async () => {
    const h = await start("redis");
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
    const alice = h.connId(0);
    const bob = h.connId(2);
    await h.login(alice, "alice", "alice-pw", "desk");
    await h.login(bob, "bob", "bob-pw", "laptop");
    await h.send(bob, '<presence xmlns="jabber:client"/>');
    await h.ping(bob, "bob-available");

    const ghost = "e1.3.ghost";
    const { routes, offline } = h.backend;
    await routes.bind("bob@localhost", "phone", ghost, 32);
    await routes.update("bob@localhost", "phone", ghost, {
      presence:
        '<presence xmlns="jabber:client" from="bob@localhost/phone"><priority>5</priority></presence>',
      priority: 5,
    });

    await h.send(
      alice,
      '<message xmlns="jabber:client" type="chat" to="bob@localhost" id="m2"><body>ping?</body></message>',
    );
    const got = await h.waitFrame(bob, (f) => f.includes('id="m2"'), "the rerouted message", 3000);
    assert.equal(parse(got).getChildText("body"), "ping?");
    assert.deepEqual(
      (await routes.list("bob@localhost")).map((r) => r.resource),
      ["laptop"],
    );
    assert.equal(await offline.count("bob@localhost"), 0);
    assert.match(await h.ping(alice, "again", 2000), /type="result"/);
  });

  it("answers an iq for a resource bound to a gone connection with service-unavailable", async () => {
    const h = await start("redis");
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
    const alice = h.connId(0);
    await h.login(alice, "alice", "alice-pw", "desk");
    const ghost = "e1.1.ghost";
    await h.backend.routes.bind("bob@localhost", "phone", ghost, 32);

    await h.send(
      alice,
      '<iq xmlns="jabber:client" type="get" id="v1" to="bob@localhost/phone"><query xmlns="jabber:iq:version"/></iq>',
    );
    // RFC 6121 §8.5.3.2.1 (no such resource): an iq gets service-unavailable, never silence.
    const reply = await h.waitFrame(alice, (f) => f.includes('id="v1"'), "the answer to v1", 3000);
    const el = parse(reply);
    assert.equal(el.attrs.type, "error", reply);
    assert.ok(el.getChild("error")?.getChild("service-unavailable", NS_STANZA_ERRORS), reply);
    assert.deepEqual(await h.backend.routes.list("bob@localhost"), []);
  });

  it("never lets a new socket under a reused connection id inherit the old login", async () => {
    const h = await start("memory");
    const session = await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    const c = h.connId(0);
    await h.login(c, "alice", "alice-pw", "desk");
    assert.equal((await h.backend.routes.list("alice@localhost")).length, 1);

    // An edge restarted with the same id reissues the serial: a new `open` for a live id.
    await h.open(c);
    await h.send(c, OPEN_FRAME);
    await until(
      async () => (await h.backend.routes.list("alice@localhost")).length === 0,
      "old login ended",
    );
    await h.send(
      c,
      `<message xmlns="jabber:client" to="bob@localhost"><body>as alice?</body></message>`,
    );
    await h.waitFrame(c, (f) => f.includes("<not-authorized"), "not-authorized for the new socket");
    // The stream error is written before the connection's snapshot is deleted and it leaves.
    await until(() => session.connections() === 0, "the new socket's connection ended");
  });

  it("does not resurrect a closed connection when its open is delivered again", async () => {
    const h = await start("memory");
    const session = await h.startSession("s1");
    const c = h.connId(0);
    await h.open(c);
    await h.send(c, OPEN_FRAME);
    await h.waitFrame(c, (f) => f.includes("<stream:features"), "features");
    assert.equal(session.connections(), 1);
    await h.socketClosed(c, "client");
    await until(() => session.connections() === 0, "the connection ended");

    await h.open(c); // the same packet again
    await h.send(c, OPEN_FRAME);
    await h.waitPacket((p) => p.k === "close" && p.c === c, "a close for the unknown socket");
    assert.equal(session.connections(), 0);
    assert.match(await session.metrics.metrics(), /^megaphone_session_connections 0$/m);
    assert.equal(h.frames(c).filter((f) => f.includes("<stream:features")).length, 1);
  });

  it("does not resurrect a closed connection from entries claimed from a dead member", async () => {
    const h = await start("redis", { config: { claimIdleMs: 1000 } });
    const c = h.connId(0);
    await h.open(c);
    await h.send(c, OPEN_FRAME);
    // The member that owned shard 0 takes both and dies before acknowledging them.
    assert.equal((await deadConsumer(h, "s-dead", 2)).length, 2);
    // The socket goes away meanwhile; a new member starts and handles the close at once.
    await h.socketClosed(c, "connection-lost");
    const session = await h.startSession("s-new");
    await until(async () => (await pendingEverywhere()) === 0, "everything claimed and handled");

    assert.equal(session.connections(), 0, "the claimed open made the connection live again");
    // Whatever it answered to the claimed frames, the socket is unknown to it now.
    await h.send(c, '<iq xmlns="jabber:client" type="get" id="x"/>');
    await h.waitPacket((p) => p.k === "close" && p.c === c, "a close for the unknown socket");
  });

  it("does not lose stanzas a dead member held when newer ones were handled first", async () => {
    const h = await start("redis", { config: { claimIdleMs: 1000 } });
    await h.startSession("s-old");
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
    const alice = h.connId(0);
    const bob = h.connId(1);
    await h.login(alice, "alice", "alice-pw", "desk");
    await h.login(bob, "bob", "bob-pw", "phone");
    await h.send(bob, '<presence xmlns="jabber:client"/>');
    await h.ping(bob, "bob-available");
    await h.stopSession(); // snapshots saved, everything acknowledged

    const chat = (id: string, body: string) =>
      `<message xmlns="jabber:client" type="chat" to="bob@localhost" id="${id}"><body>${body}</body></message>`;
    // The next member takes alice's first message and dies with it ...
    await h.send(alice, chat("first", "one"));
    assert.equal((await deadConsumer(h, "s-dead", 1)).length, 1);
    // ... her second is written meanwhile, and a new member takes over.
    await h.send(alice, chat("second", "two"));
    await h.startSession("s-new");
    await h.waitFrame(bob, (f) => f.includes('id="second"'), "the second message");
    await until(async () => (await pendingEverywhere()) === 0, "the first message claimed");
    // Claimed and handled by now: it must have reached bob (or at least his offline queue).
    const delivered = h.frames(bob).some((f) => f.includes('id="first"'));
    const storedOffline = (await h.backend.offline.count("bob@localhost")) > 0;
    assert.ok(delivered || storedOffline, "alice's first message was lost");
  });

  it("saves a snapshot only after the effects it vouches for, so a crash in between loses nothing", async () => {
    const { h, capture, c } = await aliceLoggedIn(0, "desk");

    // Only writes to the edge inbox fail (the bus writer's XADD); snapshots could be stored.
    await admin.call(
      "ACL",
      "SETUSER",
      "default",
      "resetkeys",
      "~mp:{*",
      `%R~${KEYS.edgeInbox("*")}`,
    );
    await h.send(
      c,
      '<iq xmlns="jabber:client" type="get" id="after-crash"><ping xmlns="urn:xmpp:ping"/></iq>',
    );
    await capture.waitFor(BATCH_FAILED, 1);
    // The process dies before its retry; the snapshot must not claim the ping as applied.
    await h.stopSession();
    const saved = JSON.parse((await admin.hget(KEYS.snapshot(0), c)) ?? "{}") as {
      lastEntryId?: string;
    };
    const [[pendingId]] = (await admin.xpending(KEYS.shardInbox(0), "session", "-", "+", 1)) as [
      [string],
    ];
    assert.ok(
      saved.lastEntryId && compareEntryIds(saved.lastEntryId, pendingId) < 0,
      `snapshot ${saved.lastEntryId} is ahead of the pending entry ${pendingId}`,
    );
    await restoreDefault(admin);
    await h.startSession("s1");
    const reply = await h.waitFrame(c, (f) => f.includes('id="after-crash"'), "the ping's answer");
    assert.match(reply, /type="result"/);
  });

  it("lets other connections progress while some do slow work, in as many batches as they like", async () => {
    const h = await start("redis");
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    // Logins that each cost a long PBKDF2 (PLAIN derives with the account's iteration count).
    const SLOW = 20;
    const slowAccount = createAccount("slow-pw", 400_000);
    await Promise.all(
      Array.from({ length: SLOW }, (_, i) =>
        h.backend.accounts.create(`slow${i}@localhost`, slowAccount),
      ),
    );
    const alice = h.connId(1);
    await h.login(alice, "alice", "alice-pw", "desk");
    const slow = Array.from({ length: SLOW }, () => h.connId(0));
    for (const c of slow) {
      await h.open(c);
      await h.send(c, OPEN_FRAME);
      await h.waitFrame(c, (f) => f.includes("<mechanism>PLAIN<"), "SASL features");
    }
    // Each login read in a batch of its own: more batches than were ever worked on at once.
    for (const [i, c] of slow.entries()) {
      await h.send(c, plainAuth(`slow${i}`, "slow-pw"));
      await until(async () => (await h.backend.bus.shardLag(0)) === 0, "login read", 5000, 1);
    }
    await h.send(
      alice,
      '<iq xmlns="jabber:client" type="get" id="quick"><ping xmlns="urn:xmpp:ping"/></iq>',
    );
    await h.waitFrame(alice, (f) => f.includes('id="quick"'), "alice's answer");
    const successes = () =>
      h.packets.filter((p) => slow.includes(p.c) && p.k === "data" && p.d.startsWith("<success"))
        .length;
    const doneBeforeAlice = successes();
    await until(() => successes() === SLOW, "every slow login", 30000);
    console.log(
      `      alice answered while ${SLOW - doneBeforeAlice} of ${SLOW} slow logins were still deriving`,
    );
    // One batch at a time (or a bound on batches in flight) would have answered alice last.
    assert.ok(doneBeforeAlice < SLOW / 2, `${doneBeforeAlice} slow logins finished first`);
  });

  it("answers a stanza with a namespace prefix with an error in jabber:client", async () => {
    const h = await start("memory");
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    const c = h.connId(0);
    await h.login(c, "alice", "alice-pw", "desk");

    await h.send(c, '<c:iq xmlns:c="jabber:client" type="get" id="p1"><q xmlns="urn:x"/></c:iq>');
    const reply = await h.waitFrame(c, (f) => f.includes('id="p1"'), "the error reply");
    // Well-formed for the strict parser the session itself uses (no unbound prefix either).
    const strict = parseFrame(reply, 65536);
    const el = parse(reply);
    for (const e of [strict, el]) {
      assert.equal(e.getName(), "iq");
      assert.equal(e.getNS(), NS_CLIENT, reply);
    }
    assert.equal(el.attrs.type, "error");
    assert.equal(el.attrs.to, "alice@localhost/desk");
    const error = el.getChild("error");
    assert.ok(error, reply);
    assert.equal(error.attrs.type, "cancel");
    assert.ok(error.getChild("service-unavailable", NS_STANZA_ERRORS), reply);

    // A prefixed stanza a handler serves is answered in jabber:client too.
    await h.send(
      c,
      '<c:iq xmlns:c="jabber:client" type="get" id="p2"><ping xmlns="urn:xmpp:ping"/></c:iq>',
    );
    const pong = parseFrame(
      await h.waitFrame(c, (f) => f.includes('id="p2"'), "the result"),
      65536,
    );
    assert.equal(pong.getNS(), NS_CLIENT);
    assert.equal(pong.attrs.type, "result");
  });
});
