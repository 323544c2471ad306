// Issue 7, shard ownership: session members share the shards by rendezvous hashing over the live
// membership (Redis heartbeats) and serve a shard only while they hold its lease. Real Redis,
// real edge and session processes, real @xmpp/client users; every chat message is counted
// (delivered once, duplicated, missing) and the longest delivery time is the pause users saw.
import assert from "node:assert/strict";
import { SESSION_GROUP } from "../../services/shared/bus/redis-bus-parts.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { ChatLoad, formatReport } from "../helpers/chat-load.js";
import { Mesh, metricValue, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { connect } from "../helpers/redis-server.js";
import { Running } from "../helpers/running.js";
import { TestUser } from "../helpers/xmpp-client.js";

const SHARDS = 16;
const LEASE_TTL_MS = 2000;
/** Small lease and membership times, so that failover is observable within a test. */
const FAST_OWNERSHIP = {
  MEGAPHONE_SHARD_LEASE_TTL_MS: String(LEASE_TTL_MS),
  MEGAPHONE_MEMBERSHIP_HEARTBEAT_INTERVAL_MS: "250",
  MEGAPHONE_MEMBERSHIP_TTL_MS: "1000",
};

function metric(session: SessionProcess, name: string): Promise<number> {
  return metricValue(session.httpPort, name);
}

/** Shards served by each session, read from their metrics. */
async function served(sessions: SessionProcess[]): Promise<number[]> {
  return Promise.all(sessions.map((s) => metric(s, "megaphone_session_shards_served")));
}

/** Waits until the sessions together serve every shard, each at least `min`. */
async function balanced(sessions: SessionProcess[], min = 1, timeoutMs = 15000): Promise<void> {
  await until(
    async () => {
      const counts = await served(sessions);
      return counts.reduce((a, b) => a + b, 0) === SHARDS && counts.every((c) => c >= min);
    },
    "every shard served",
    timeoutMs,
  );
}

/** The member holding each shard's lease, from Redis. */
async function leaseHolders(mesh: Mesh): Promise<(string | null)[]> {
  const redis = connect(mesh.redis.url);
  const keys = redisKeys();
  try {
    return await Promise.all(
      Array.from({ length: SHARDS }, (_, s) => redis.hget(keys.shardLease(s), "member")),
    );
  } finally {
    redis.disconnect();
  }
}

/**
 * Where a missing message may be: the shard inbox entries still pending, by consumer, with how
 * long each has waited (printed when a load misses messages, for the next look at it).
 */
async function pendingEntries(mesh: Mesh): Promise<string> {
  const redis = connect(mesh.redis.url);
  const keys = redisKeys();
  try {
    const lines: string[] = [];
    for (let shard = 0; shard < SHARDS; shard++) {
      const pending = (await redis.xpending(
        keys.shardInbox(shard),
        SESSION_GROUP,
        "-",
        "+",
        100,
      )) as [string, string, number, number][];
      for (const [id, consumer, idleMs] of pending)
        lines.push(`shard ${shard} ${id} at ${consumer}, idle ${idleMs} ms`);
    }
    return lines.length > 0 ? lines.join("; ") : "none pending";
  } finally {
    redis.disconnect();
  }
}

/** Prints where the missing messages may be, if any are. */
async function reportMissing(mesh: Mesh, missing: number): Promise<void> {
  if (missing > 0) console.log(`      shard inbox entries pending: ${await pendingEntries(mesh)}`);
}

describe("e2e: shard ownership across session members (issue 7)", function () {
  this.timeout(90000);
  let mesh: Mesh;
  const users: TestUser[] = [];
  let nextUser = 0;
  const running = new Running();

  beforeEach(async () => {
    mesh = await Mesh.start({ shardCount: SHARDS, env: FAST_OWNERSHIP });
  });

  afterEach(async () => {
    if (process.env.MEGAPHONE_TEST_DUMP)
      for (const service of mesh.services) console.log(`--- ${service.name}\n${service.output()}`);
    running.stopAll();
    // Dropped, not closed: a graceful close races the stanzas still arriving (@xmpp/client
    // throws on data that arrives while it stops).
    for (const u of users.splice(0)) u.kill();
    await mesh.stop();
  });

  /** `count` new users logged in, alternating between the edges, in pairs. */
  async function pairs(edges: EdgeProcess[], count: number): Promise<[TestUser, TestUser][]> {
    const names = Array.from({ length: count * 2 }, () => `u${nextUser++}`);
    await mesh.addUsers(names.map((n) => ({ jid: `${n}@localhost`, password: `${n}-pw` })));
    const logged = await Promise.all(
      names.map((n, i) =>
        TestUser.connect({
          service: edges[i % edges.length].url,
          username: n,
          password: `${n}-pw`,
        }),
      ),
    );
    users.push(...logged);
    const result: [TestUser, TestUser][] = [];
    for (let i = 0; i < logged.length; i += 2) result.push([logged[i], logged[i + 1]]);
    return result;
  }

  it("two sessions given the same shards never serve one at once; the other takes over on kill -9", async () => {
    const s1 = await mesh.session("s1", `0-${SHARDS - 1}`);
    const s2 = await mesh.session("s2", `0-${SHARDS - 1}`);
    const edge = await mesh.edge("e1", `0-${SHARDS - 1}`);
    const counts = await served([s1, s2]);
    console.log(`      overlapping --shards: s1 serves ${counts[0]}, s2 serves ${counts[1]}`);
    assert.deepEqual(counts, [SHARDS, 0], "the first holds every lease; the second waits");
    assert.ok((await leaseHolders(mesh)).every((m) => m === "s1"));

    const load = running.add(new ChatLoad(await pairs([edge], 4)));
    load.start(100);
    await until(async () => load.sent >= 40, "messages flowing");
    await s1.stop("SIGKILL");
    const killedAt = Date.now();
    await until(
      async () => (await served([s2]))[0] === SHARDS,
      "s2 serving every shard",
      LEASE_TTL_MS + 5000,
    );
    console.log(
      `      s2 serves all ${SHARDS} shards ${Date.now() - killedAt} ms after kill -9 of s1`,
    );
    await until(async () => load.sent >= 200, "more messages", 20000);
    const report = await load.report();
    console.log(`      ${formatReport("overlap + kill -9", report)}`);
    assert.equal(report.missing, 0);
    assert.equal(report.disconnected, 0, "the users' connections continue on s2");
    assert.ok((await leaseHolders(mesh)).every((m) => m === "s2"));
  });

  it("3 members and 2 edges: users spread over every shard chat, each message once and in order", async () => {
    const sessions = await Promise.all(["s1", "s2", "s3"].map((id) => mesh.session(id, "")));
    const edges = await Promise.all([mesh.edge("e1", ""), mesh.edge("e2", "")]);
    await balanced(sessions);
    const counts = await served(sessions);
    console.log(`      shards per member: ${counts.join(", ")}`);
    const load = running.add(new ChatLoad(await pairs(edges, 16)));
    load.start(100);
    await until(async () => load.sent >= 600, "600 messages", 20000);
    const report = await load.report();
    console.log(`      ${formatReport("3 members", report)}`);
    assert.equal(report.missing, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.outOfOrder, 0);
  });

  it("scales 1 → 3 → 1 members while 100 clients chat: none lost, none duplicated, none disconnected", async () => {
    const s1 = await mesh.session("s1", "");
    const edges = await Promise.all([mesh.edge("e1", ""), mesh.edge("e2", "")]);
    const load = running.add(new ChatLoad(await pairs(edges, 50)));
    load.start(500);
    const sentBy = (n: number) => until(async () => load.sent >= n, "messages sent", 20000);
    await sentBy(load.sent + 200);
    const s2 = await mesh.session("s2", "");
    const s3 = await mesh.session("s3", "");
    await balanced([s1, s2, s3]);
    const spread = await served([s1, s2, s3]);
    await sentBy(load.sent + 200);
    await s3.stop("SIGTERM");
    await s2.stop("SIGTERM");
    await balanced([s1]);
    await sentBy(load.sent + 200);
    const report = await load.report();
    console.log(`      shards per member at 3: ${spread.join(", ")}`);
    console.log(`      ${formatReport("1 → 3 → 1", report)}`);
    assert.equal(report.missing, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.outOfOrder, 0);
    assert.equal(report.disconnected, 0);
    assert.equal(await metric(s1, "megaphone_session_fenced_refusals_total"), 0);
  });

  it("rolling restart of every member, one at a time, under load: none lost, duplicated or disconnected", async () => {
    const ids = ["s1", "s2", "s3"];
    let sessions = await Promise.all(ids.map((id) => mesh.session(id, "")));
    const edges = await Promise.all([mesh.edge("e1", ""), mesh.edge("e2", "")]);
    await balanced(sessions);
    const load = running.add(new ChatLoad(await pairs(edges, 10)));
    load.start(100);
    for (let i = 0; i < ids.length; i++) {
      await until(() => load.sent >= (i + 1) * 100, "messages sent", 20000);
      assert.equal(await sessions[i].stop("SIGTERM"), 0, `${ids[i]} exits cleanly`);
      await balanced(sessions.filter((_, j) => j !== i));
      const restarted = await mesh.session(ids[i], "");
      sessions = sessions.map((s, j) => (j === i ? restarted : s));
      await balanced(sessions);
    }
    await until(() => load.sent >= 400, "messages sent", 20000);
    const report = await load.report();
    const repeats = await Promise.all(
      edges.map((e) => metricValue(e.port, "megaphone_edge_duplicate_frames_dropped_total")),
    );
    console.log(
      `      ${formatReport("rolling restart of 3 members", report)}; repeats dropped by the edges ${repeats.join(" + ")}`,
    );
    assert.equal(report.missing, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.outOfOrder, 0);
    assert.equal(report.disconnected, 0);
  });

  it("kill -9 of a member under load: nothing lost, and the longest pause stays within the lease + 1 s", async () => {
    const sessions = await Promise.all(["s1", "s2", "s3"].map((id) => mesh.session(id, "")));
    const edges = await Promise.all([mesh.edge("e1", ""), mesh.edge("e2", "")]);
    await balanced(sessions);
    const load = running.add(new ChatLoad(await pairs(edges, 20)));
    load.start(200);
    await until(async () => load.sent >= 200, "messages sent", 20000);
    await sessions[0].stop("SIGKILL");
    const killedAt = Date.now();
    await balanced(sessions.slice(1));
    const takeoverMs = Date.now() - killedAt;
    await until(async () => load.sent >= 1200, "messages sent", 30000);
    const report = await load.report();
    const repeats = await Promise.all(
      edges.map((e) => metricValue(e.port, "megaphone_edge_duplicate_frames_dropped_total")),
    );
    console.log(
      `      ${formatReport("kill -9 of s1", report)}; shards moved in ${takeoverMs} ms; repeats dropped by the edges ${repeats.join(" + ")}`,
    );
    await reportMissing(mesh, report.missing);
    assert.equal(report.missing, 0);
    assert.equal(report.duplicates, 0, "entries applied again deliver nothing twice");
    assert.equal(report.disconnected, 0);
    assert.ok(
      report.maxLatencyMs <= LEASE_TTL_MS + 1000,
      `longest delivery ${report.maxLatencyMs} ms exceeds the lease (${LEASE_TTL_MS} ms) + 1 s`,
    );
  });

  it("a member paused past its lease (SIGSTOP) finds its leases lost when it wakes, steps down and rejoins, and nothing is delivered twice", async () => {
    const [s1, s2] = await Promise.all(["s1", "s2"].map((id) => mesh.session(id, "")));
    const edges = await Promise.all([mesh.edge("e1", ""), mesh.edge("e2", "")]);
    await balanced([s1, s2]);
    const load = running.add(new ChatLoad(await pairs(edges, 10)));
    load.start(100);
    await until(async () => load.sent >= 100, "messages sent", 20000);
    s1.process.kill("SIGSTOP");
    try {
      await until(
        async () => (await served([s2]))[0] === SHARDS,
        "s2 serving every shard while s1 is paused",
        LEASE_TTL_MS + 5000,
      );
      assert.ok((await leaseHolders(mesh)).every((m) => m === "s2"));
      await until(async () => load.sent >= 400, "messages sent", 20000);
    } finally {
      s1.process.kill("SIGCONT");
    }
    await until(
      async () =>
        (await metric(s1, 'megaphone_session_shard_lease_changes_total{change="lost"}')) > 0,
      "s1 noticing its leases are lost",
    );
    await balanced([s1, s2]);
    const refusals = await metric(s1, "megaphone_session_fenced_refusals_total");
    await until(async () => load.sent >= 600, "messages sent", 20000);
    const report = await load.report();
    console.log(
      `      ${formatReport("SIGSTOP s1", report)}; s1's refused writes and batches: ${refusals}`,
    );
    // Whether s1 had a batch or a write in hand when it was stopped is up to timing (a CI run
    // found 0 refusals, another 1): its refusals are printed, not asserted. That a fenced
    // write is refused is shown in test/integration/shard-fence.test.ts; here, that s1 woke,
    // lost its leases, rejoined, and nothing it held was delivered twice or lost.
    assert.equal(report.duplicates, 0);
    await reportMissing(mesh, report.missing);
    assert.equal(report.missing, 0);
    assert.equal(report.disconnected, 0);
  });
});
