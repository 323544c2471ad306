// A stanza one connection's unit sends an XEP-0198 session of the same member changes that
// session's stored state (its count of stanzas sent and its unacknowledged queue). When the
// session's turn is free, the sender's unit holds it, changes it in place and saves it with its
// own snapshot and acknowledgement in one fenced step on one Redis server, or before them where
// a step takes one shard (a Redis Cluster) (LiveContext.holdForDelivery), instead of routing
// the stanza through the session's inbox. The real core on its own Redis, its fenced writes
// recorded in order, the test in the place of the read loop.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { originDigest } from "../../services/shared/bus/origin.js";
import {
  edgePacketOf,
  shardPacketOf,
  type EdgePacket,
  type ShardEntry,
  type ShardPacket,
} from "../../services/shared/bus/packets.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import { FencedError } from "../../services/shared/leases/fenced-error.js";
import type { Lease } from "../../services/shared/leases/shard-leases.js";
import { silentLogger } from "../../services/shared/log.js";
import { createBackend, type Backend } from "../../services/shared/wiring.js";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import { newSmState } from "../../services/session/features/sm/sm-state.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { metricInText } from "../helpers/cluster.js";
import { connectAdmin } from "../helpers/redis-admin.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import {
  liveSession,
  loggedBusCallbacks,
  recordedFencedWrites,
  recordingBus,
  type LiveSession,
} from "../helpers/live-session.js";

const ALICE = "e1.0.alice";
const keys = redisKeys();
const BOB = "e1.1.bob";

describe("a stanza for an XEP-0198 session of the same member, its turn held by the sender's unit", function () {
  let server: RedisServer;
  let admin: Redis;
  let backend: Backend;
  let session: LiveSession;
  let stop: AbortController;
  let log: string[];
  /** Route packets written to shard inboxes, and packets the bus wrote to edges. */
  let routed: ShardPacket[];
  let busFrames: EdgePacket[];
  const { ack, acknowledged } = loggedBusCallbacks(() => log);

  before(async () => {
    server = await startRedis();
    admin = await connectAdmin(server.url, 1);
  });
  after(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  beforeEach(async () => {
    await admin.flushdb();
    const config: Config = { ...DEFAULTS, redis: `${server.url}/1`, shardCount: 4 };
    const base = createBackend(config, silentLogger);
    log = [];
    routed = [];
    busFrames = [];
    const bus = recordingBus(base.bus, {
      toShard: (packet) => void (packet.k === "route" && routed.push(packet)),
      toEdge: (packet) => void busFrames.push(packet),
    });
    // The inbox of bob's edge, as the edge creates it when it starts.
    await admin.xadd(keys.edgeInbox("e1"), "*", "k", "inbox-created");
    backend = { ...base, bus, fenced: recordedFencedWrites(base.fenced, log) };
    const leases = new Map<number, Lease>();
    for (const shard of [0, 1]) leases.set(shard, (await backend.leases.acquire(shard, "s1"))!);
    stop = new AbortController();
    leaseOf = (shard) => leases.get(shard);
    session = servingShards01(liveSession(backend, config, leaseOf, stop.signal));
  });
  let leaseOf: (shard: number) => Lease | undefined;

  /** `live` with both shards served, their inboxes handled: local delivery allowed. */
  function servingShards01(live: LiveSession): LiveSession {
    const local = live.ctx.deps.local;
    for (const shard of [0, 1]) {
      local.started(shard, new Map([[shard, "0-0"]]));
      local.handled(shard, "0-0");
    }
    return live;
  }

  afterEach(async () => {
    stop.abort();
    await backend.close();
  });

  /** A bound, available connection of `user` on `shard`, with XEP-0198 if `sm`. */
  async function bound(connId: string, user: string, shard: number, sm: boolean) {
    const conn = newConnState(connId, "e1", shard, Date.now());
    Object.assign(conn, {
      stage: "bound",
      bareJid: `${user}@localhost`,
      resource: "phone",
      available: true,
    });
    if (sm) conn.sm = newSmState(shard, true);
    assert.equal((await backend.routes.bind(`${user}@localhost`, "phone", connId, 10)).ok, true);
    session.table.set(conn);
    return conn;
  }

  const toBob = (id: string, body: string): ShardEntry => ({
    id,
    shard: 0,
    packet: {
      k: "data",
      c: ALICE,
      e: "e1",
      d: `<message xmlns="jabber:client" type="chat" to="bob@localhost/phone" id="${id}"><body>${body}</body></message>`,
    },
  });
  const bobNow = () => session.table.get(BOB) as ConnState;
  /** The frames for bob in his edge's inbox, whoever wrote them (the bus, or a fenced step). */
  const bobsFrames = async () =>
    (await admin.xrange(keys.edgeInbox("e1"), "-", "+"))
      .map(([, fields]) => edgePacketOf(fields))
      .filter((p) => p?.k === "data" && p.c === BOB) as Extract<EdgePacket, { k: "data" }>[];
  /** The frames for bob the bus wrote: none of a held delivery where its save writes them. */
  const bobsBusFrames = () => busFrames.filter((p) => p.k === "data" && p.c === BOB);
  /** Stanzas for bob's XEP-0198 session by path (held, inbox). */
  const heldCount = async (path: string) =>
    metricInText(
      await session.ctx.deps.metrics.registry.metrics(),
      `megaphone_session_sm_local_deliveries_total{path="${path}"}`,
    ) || 0;

  /** alice's unit sends bob "hello" while his own turn is taken. */
  async function sendWhileBobBusy(): Promise<void> {
    let release!: () => void;
    const busy = session.table.withConn(BOB, () => new Promise<void>((r) => (release = r)));
    try {
      await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    } finally {
      release();
      await busy;
    }
  }

  it("saves the session with the sender's snapshot and acknowledgement in one step, and writes nothing to its inbox", async () => {
    await bound(ALICE, "alice", 0, true);
    const bob = await bound(BOB, "bob", 1, true);
    let pushes = 0;
    const push = backend.smQueues.push.bind(backend.smQueues);
    backend.smQueues.push = (...args) => {
      pushes++;
      return push(...args);
    };
    await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    assert.equal(pushes, 0, "no write of its own for the stanza in bob's queue");
    // bob's state (shard 1) with the stanza for his queue, and alice's own, which marks her
    // entry applied: one fenced step, all or nothing.
    // bob's state (shard 1) with the stanza for his queue and its frame for his edge, and
    // alice's own, which marks her entry applied: one fenced step, all or nothing.
    assert.deepEqual(log, [
      `together save=${BOB} queued=1 frames=1 + save=${ALICE} ack=1-1`,
      "acknowledged 1-1",
    ]);
    assert.deepEqual(routed, [], "no route through bob's inbox");
    assert.equal(await heldCount("held"), 1);
    const smId = (bob.sm as { id: string }).id;
    assert.equal(bobNow().sm?.sent, 1, "counted for bob");
    const queued = await backend.smQueues.range(1, smId, 1, 1);
    assert.equal(queued.length, 1, "kept in bob's unacknowledged queue");
    assert.match(queued[0], /<body>hello<\/body>/);
    const stored = JSON.parse((await backend.snapshots.loadShard(1)).get(BOB) as string) as {
      sm: { sent: number };
      recentOrigins: string;
    };
    assert.equal(stored.sm.sent, 1, "bob's stored count");
    assert.equal(stored.recentOrigins, originDigest(`${ALICE}|1-1|0`), "its origin remembered");
    const [frame, ...more] = await bobsFrames();
    assert.deepEqual(more, []);
    assert.match(frame.d, /<body>hello<\/body>/, "written to bob's edge by that step");
    assert.equal(frame.o, `${ALICE}|1-1|0`, "with its origin, for the edge to drop a repeat");
    assert.deepEqual(bobsBusFrames(), [], "and not by the bus after it");
  });

  it("gives the stanza back to the session's inbox as undelivered, in that same step, when its edge is gone", async () => {
    await admin.del(keys.edgeInbox("e1")); // the edge stopped: its inbox with it
    await bound(ALICE, "alice", 0, true);
    await bound(BOB, "bob", 1, true);
    await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    assert.deepEqual(log, [
      `together save=${BOB} queued=1 frames=1 + save=${ALICE} ack=1-1`,
      "acknowledged 1-1",
    ]);
    assert.equal(await admin.exists(keys.edgeInbox("e1")), 0, "no inbox made for a gone edge");
    const returned = (await admin.xrange(keys.shardInbox(1), "-", "+")).map(([, fields]) =>
      shardPacketOf(fields),
    );
    assert.equal(returned.length, 1);
    const [packet] = returned;
    assert.equal(packet?.k, "undelivered", "back to bob's shard, which ends his connection");
    assert.equal(packet.c, BOB);
    assert.equal(packet.k === "undelivered" && packet.e, "e1");
    assert.match(packet.k === "undelivered" ? packet.d : "", /<body>hello<\/body>/);
  });

  it("saves the session before the sender's snapshot where a step writes one shard (a Redis Cluster)", async () => {
    // The same Redis, its fenced writes declaring one shard per step, and no frames, as a
    // cluster's do.
    const oneShardPerStep = {
      ...backend.fenced,
      writesShardsTogether: false,
      writesEdgeFrames: false,
    };
    stop.abort();
    stop = new AbortController();
    const config: Config = { ...DEFAULTS, redis: `${server.url}/1`, shardCount: 4 };
    session = servingShards01(
      liveSession({ ...backend, fenced: oneShardPerStep }, config, leaseOf, stop.signal),
    );
    await bound(ALICE, "alice", 0, true);
    const bob = await bound(BOB, "bob", 1, true);
    await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    // bob's state (shard 1) first, with the stanza for his queue in the same write, then
    // alice's own, which marks her entry applied.
    assert.deepEqual(log, [
      `snapshots save=${BOB} remove= queued=1`,
      `snapshots+ack save=${ALICE} ack=1-1`,
      "acknowledged 1-1",
    ]);
    assert.deepEqual(routed, [], "no route through bob's inbox");
    const smId = (bob.sm as { id: string }).id;
    assert.equal((await backend.smQueues.range(1, smId, 1, 1)).length, 1, "in bob's queue");
    assert.equal(bobsBusFrames().length, 1, "written to bob's edge once he is saved");
    assert.equal((await bobsFrames()).length, 1);
  });

  it("goes through the session's inbox while its turn is busy", async () => {
    await bound(ALICE, "alice", 0, false);
    await bound(BOB, "bob", 1, true);
    await sendWhileBobBusy();
    assert.deepEqual(
      routed.map((p) => [p.c, p.k === "route" ? p.q : undefined]),
      [[BOB, "1"]],
      "routed through bob's inbox, queued",
    );
    assert.equal(await heldCount("inbox"), 1);
    assert.equal(await heldCount("held"), 0);
    assert.equal(bobNow().sm?.sent, 0, "not counted here: in bob's own turn");
    // alice's units write no snapshot (no XEP-0198): her entry is acknowledged on its own.
    assert.deepEqual(log, ["ack 1-1"]);
  });

  /** bob's own unit applies the stanza alice's unit routed to his inbox, with `more` after it. */
  const bobsOwnUnit = (...more: ShardPacket[]) =>
    session.processor.handleBatch(
      [routed[0], ...more].map((packet, i) => ({ id: `2-${i + 1}`, shard: 1, packet })),
      ack,
      acknowledged,
    );

  /** Counts bob's queue writes of their own, each with how many frames were written before it. */
  function countPushes(): number[] {
    const framesAtPush: number[] = [];
    const push = backend.smQueues.push.bind(backend.smQueues);
    backend.smQueues.push = (...args) => {
      framesAtPush.push(bobsBusFrames().length);
      return push(...args);
    };
    return framesAtPush;
  }

  it("in the session's own unit of deliveries, stores the stanza with its snapshot and acknowledgement in one step, its frame written at once", async () => {
    await bound(ALICE, "alice", 0, false);
    const bob = await bound(BOB, "bob", 1, true);
    await sendWhileBobBusy(); // alice's unit routes the stanza to his inbox
    assert.equal(routed.length, 1);
    log.length = 0;
    const pushes = countPushes();
    await bobsOwnUnit();
    // What reads his queue or counts against it (his acknowledgements, a resumption, his
    // socket's close) comes through this inbox, behind this unit: it finds the stanza stored.
    assert.deepEqual(pushes, [], "no queue write of its own");
    assert.deepEqual(log, [`snapshots+ack save=${BOB} ack=2-1 queued=1`, "acknowledged 2-1"]);
    assert.equal(bobsBusFrames().length, 1, "the frame written at once, by the bus");
    const smId = (bob.sm as { id: string }).id;
    assert.match((await backend.smQueues.range(1, smId, 1, 1))[0] ?? "", /<body>hello<\/body>/);
  });

  it("in a unit with the client's own packets too, stores the stanza in its queue at once, ahead of its frame", async () => {
    await bound(ALICE, "alice", 0, false);
    const bob = await bound(BOB, "bob", 1, true);
    await sendWhileBobBusy();
    const pushes = countPushes();
    const request: ShardPacket = { k: "data", c: BOB, e: "e1", d: "<r xmlns='urn:xmpp:sm:3'/>" };
    await bobsOwnUnit(request);
    assert.deepEqual(pushes, [0], "stored on its own, ahead of the frame");
    const smId = (bob.sm as { id: string }).id;
    assert.equal((await backend.smQueues.range(1, smId, 1, 1)).length, 1);
    assert.deepEqual(
      (await bobsFrames()).map((p) => p.d.slice(0, 8)),
      ["<message", "<a xmlns"],
      "the stanza, then the answer to his <r/>",
    );
  });

  it("in the session's own unit of deliveries, hands the stanza it kept to offline storage when the delivery ends the session (its unacknowledged limit)", async () => {
    Object.assign(session.ctx.deps.config, { smMaxUnackedStanzas: 1 });
    await bound(ALICE, "alice", 0, false);
    const bob = await bound(BOB, "bob", 1, true);
    (bob.sm as { sent: number }).sent = 1; // one stanza unacknowledged already: at the limit
    await backend.accounts.create("bob@localhost", createAccount("pw", 4096));
    await sendWhileBobBusy();
    const pushes = countPushes();
    await bobsOwnUnit();
    assert.deepEqual(pushes, [], "never queued: the session ended in the same unit");
    assert.equal(session.table.get(BOB), undefined, "bob's session ended");
    const offline = await backend.offline.takeAll("bob@localhost");
    assert.equal(offline.length, 1, "the stanza stored offline, once");
    assert.match(offline[0], /<body>hello<\/body>/);
  });

  it("puts the session back as it was when the unit fails before saving it, and counts the stanza once when the unit is applied again", async () => {
    await bound(ALICE, "alice", 0, true);
    await bound(BOB, "bob", 1, true);
    // bob's first save is refused as a store failure (Redis read-only a moment): the unit
    // fails before anything of it is stored, and is applied again in place.
    const write = backend.fenced.writeTogether.bind(backend.fenced);
    let refusals = 0;
    backend.fenced.writeTogether = async (items) => {
      if (items.some(({ save }) => save.has(BOB)) && refusals++ === 0) {
        const err = new Error("READONLY You can't write against a read only replica.");
        err.name = "ReplyError";
        throw err;
      }
      return write(items);
    };
    await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    assert.equal(refusals, 2, "refused once, stored the second time");
    assert.equal(bobNow().sm?.sent, 1, "counted once");
    // Written only once saved: the failed attempt wrote bob's client nothing.
    const origins = (await bobsFrames()).map((p) => p.o);
    assert.deepEqual(origins, [`${ALICE}|1-1|0`]);
    assert.deepEqual(log, [
      `together save=${BOB} queued=1 frames=1 + save=${ALICE} ack=1-1`,
      "acknowledged 1-1",
    ]);
  });

  it("drops the stanza when the sender's entry is applied again after the session was saved (the sender's snapshot lost)", async () => {
    const alice = await bound(ALICE, "alice", 0, false);
    await bound(BOB, "bob", 1, true);
    const aliceBefore = { ...alice };
    await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    assert.equal(bobNow().sm?.sent, 1);
    // The member died before alice's acknowledgement was stored: the next owner has her
    // state from before the entry and applies it again.
    session.table.set(aliceBefore);
    await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    assert.equal(bobNow().sm?.sent, 1, "not counted twice");
    assert.equal((await bobsFrames()).length, 1, "not written twice");
    assert.equal(await heldCount("held"), 2, "both applications held bob's turn");
  });

  it("gives the session its state back, and its turn, when the sender's unit gives up (the session's shard lost)", async () => {
    await bound(ALICE, "alice", 0, true);
    const bob = await bound(BOB, "bob", 1, true);
    const before = JSON.stringify(bob);
    // bob's shard went to another member while alice's unit held his turn: the step that
    // saves him is fenced.
    const write = backend.fenced.writeTogether.bind(backend.fenced);
    backend.fenced.writeTogether = async (items) => {
      const his = items.find(({ save }) => save.has(BOB));
      if (his) throw new FencedError(1, his.lease.token, his.lease.token + 1);
      return write(items);
    };
    await assert.rejects(
      session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged),
      { name: "FencedError" },
    );
    assert.deepEqual(log, [], "nothing of alice's unit stored, nothing acknowledged");
    assert.equal(JSON.stringify(bobNow()), before, "bob's state as it was (his stored one)");
    assert.equal(bobNow().sm?.sent, 0);
    assert.deepEqual(await bobsFrames(), [], "and his client was written nothing of it");
    // His turn is free again: work queued for him runs.
    assert.equal(await session.table.withConn(BOB, async () => "ran"), "ran");
  });

  it("stores nothing of the sender's unit when the held session's shard is handed over meanwhile: the stanza goes through its inbox", async () => {
    await bound(ALICE, "alice", 0, true);
    await bound(BOB, "bob", 1, true);
    // While alice's unit holds bob's turn, his shard is handed over (ShardHost.stop forgets
    // its connections without waiting for their turns): at the unit's next await.
    const tryHold = session.table.tryHold.bind(session.table);
    let handedOver = false;
    session.table.tryHold = (connId) => {
      const release = tryHold(connId);
      if (connId === BOB && release && !handedOver) {
        handedOver = true;
        queueMicrotask(() => {
          session.ctx.deps.local.stopped(1);
          session.table.forget(BOB);
        });
      }
      return release;
    };
    await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    assert.deepEqual(
      routed.map((p) => p.c),
      [BOB],
      "applied again, the unit routes the stanza to bob's inbox, for his shard's new owner",
    );
    assert.equal(await heldCount("held"), 1, "held the first time only");
    // Only alice's snapshot, once the route is stored: nothing claimed bob was saved.
    assert.deepEqual(log, [`snapshots+ack save=${ALICE} ack=1-1`, "acknowledged 1-1"]);
    assert.deepEqual(
      await bobsFrames(),
      [],
      "bob's client, now the new owner's, was written nothing",
    );
  });

  it("asks the held session for an ack without numbering it among the sender's deliveries", async () => {
    // An <r/> after every stanza (smMaxUnackedStanzas / 4).
    Object.assign(session.ctx.deps.config, { smMaxUnackedStanzas: 4 });
    await bound(ALICE, "alice", 0, true);
    await bound(BOB, "bob", 1, true);
    await session.processor.handleBatch([toBob("1-1", "hello")], ack, acknowledged);
    // An origin taken for the <r/> would shift every later delivery of alice's entry, and an
    // application of it elsewhere, where bob's count asks for no <r/>, would number them apart.
    assert.deepEqual(
      (await bobsFrames()).map((p) => [p.d.slice(0, 8), p.o]),
      [
        ["<message", `${ALICE}|1-1|0`],
        ["<r xmlns", undefined],
      ],
    );
  });
});
