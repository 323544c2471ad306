// Push-back from a shard nobody reads (issue 6, item 9): a real edge on a real redis-server, the
// test playing a session tier that reads only some shards (edge-harness.ts). The inbox of the
// unread shard stops growing near maxInboxLagEntries, its lag is on the edge's /metrics, the
// other shard's clients go on, new connections avoid it, and once a reader appears the held
// frames arrive, in order.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { parseConnId } from "../../services/shared/conn-id.js";
import { FakeSession, startTestEdge, type TestEdge } from "../helpers/edge-harness.js";
import { until } from "../helpers/poll.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { report } from "../helpers/report.js";
import { TestClient } from "../helpers/ws-client.js";

const MAX_LAG = 100; // maxInboxLagEntries' floor
const MAX_INFLIGHT = 16; // maxInflightPublishes' floor
const LIMITS = {
  maxInboxLagEntries: MAX_LAG,
  maxInflightPublishes: MAX_INFLIGHT,
  shardLagSampleIntervalMs: 100,
  inboundBytesPerSecond: 1024 * 1024,
};

/** The connection ids whose `open` packet is in `shard`'s inbox, oldest first. */
async function opensIn(admin: Redis, edge: TestEdge, shard: number): Promise<string[]> {
  const entries = await admin.xrange(edge.keys.shardInbox(shard), "-", "+");
  const ids: string[] = [];
  for (const [, fields] of entries) {
    if (fields[1] === "open") ids.push(fields[3]);
  }
  return ids;
}

describe("edge push-back from a shard nobody reads", function () {
  this.timeout(20000);
  let server: RedisServer;
  let admin: Redis;
  const cleanups: (() => unknown)[] = [];

  before(async () => {
    server = await startRedis();
    admin = connect(server.url);
  });
  after(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("holds an unread shard's frames near maxInboxLagEntries, exports its lag, and delivers them in order once read", async () => {
    // Shard 0 has no session (its owner is down); shard 1's session reads.
    const edge = await startTestEdge(
      server.url,
      cleanups,
      { ...LIMITS, shardCount: 2 },
      { sessionShards: [1] },
    );
    // Connections go to either shard at random: connect until there is one on each.
    const byShard = new Map<number, { client: TestClient; connId: string }>();
    const seen = new Set<string>();
    for (let attempt = 0; attempt < 40 && byShard.size < 2; attempt++) {
      const client = await TestClient.connect(edge.wsUrl);
      cleanups.push(() => client.terminate());
      let connId: string | undefined;
      await until(async () => {
        const ids = edge.session.opens().map((e) => e.packet.c);
        ids.push(...(await opensIn(admin, edge, 0)));
        connId = ids.find((id) => !seen.has(id));
        return connId !== undefined;
      }, "open packet");
      const id = connId as string;
      seen.add(id);
      const { shard } = parseConnId(id);
      if (!byShard.has(shard)) byShard.set(shard, { client, connId: id });
    }
    const a = byShard.get(0);
    const b = byShard.get(1);
    assert.ok(a && b, "a connection on each shard");

    const FRAMES = 300;
    const frames = Array.from(
      { length: FRAMES },
      (_, i) => `<message id="m${i}"><body/></message>`,
    );
    for (const frame of frames) a.client.send(frame);
    const inbox = edge.keys.shardInbox(0);
    // Counted by connection: other connections the test opened may have landed on shard 0 too.
    const storedFramesOfA = async () =>
      (await admin.xrange(inbox, "-", "+")).filter(
        ([, fields]) => fields[1] === "data" && fields[3] === a.connId,
      ).length;
    // Settled: shard 0 holds, nothing is in flight, and every frame is stored or held.
    await until(
      async () =>
        (await edge.metric(`megaphone_edge_shard_holding{shard="0"}`)) === 1 &&
        (await edge.metric("megaphone_edge_inflight_publishes")) === 0 &&
        (await edge.metric("megaphone_edge_held_frames")) + (await storedFramesOfA()) === FRAMES,
      "every frame of a published or held",
    );
    const lengthAtBound = await admin.xlen(inbox);
    await until(
      async () =>
        (await edge.metric(`megaphone_edge_shard_inbox_lag{shard="0"}`)) === lengthAtBound &&
        (await edge.metric(`megaphone_edge_shard_inbox_length{shard="0"}`)) === lengthAtBound,
      "shard 0's lag and length on /metrics",
    );
    const held = await edge.metric("megaphone_edge_held_frames");
    report(
      `shard 0 unread: ${FRAMES} frames sent, inbox length ${lengthAtBound} (bound ${MAX_LAG}), ${held} held by the edge`,
    );
    // Before this change all 301 entries went to Redis and nothing reported shard 0.
    assert.ok(lengthAtBound <= MAX_LAG + MAX_INFLIGHT, `inbox length ${lengthAtBound}`);
    assert.equal(await edge.metric(`megaphone_edge_shard_holding{shard="0"}`), 1);
    assert.equal(await edge.metric(`megaphone_edge_shard_holding{shard="1"}`), 0);
    assert.equal(await edge.metric(`megaphone_edge_shard_inbox_lag{shard="1"}`), 0);

    // Shard 1 goes on, and new connections go there only (each waits for its open in shard 1).
    await edge.roundTrip(b);
    for (let i = 0; i < 6; i++) await edge.roundTrip(await edge.connect());
    assert.equal(await admin.xlen(inbox), lengthAtBound, "nothing more reached shard 0");

    // A session for shard 0 appears: the held frames follow what was stored, in order.
    const startedAt = Date.now();
    const reader = new FakeSession(edge.bus, [0], "shard-0-session");
    cleanups.push(() => reader.stop());
    await until(
      () => reader.packetsOf(a.connId).length === FRAMES + 1,
      "every frame of a at shard 0's session",
      10000,
    );
    report(`a reader for shard 0 got all ${FRAMES} frames in ${Date.now() - startedAt} ms`);
    assert.deepEqual(
      reader.packetsOf(a.connId).map((p) => (p.k === "data" ? p.d : p.k)),
      ["open", ...frames],
    );
    await until(
      async () => (await edge.metric(`megaphone_edge_shard_holding{shard="0"}`)) === 0,
      "shard 0 no longer held",
    );
    assert.equal(await edge.metric("megaphone_edge_held_frames"), 0);
    assert.ok(a.client.isOpen, "a was slowed down, not disconnected");
  });

  it("refuses new connections with 503 while every shard it assigns to is far behind", async () => {
    const edge = await startTestEdge(
      server.url,
      cleanups,
      { ...LIMITS, shardCount: 1 },
      { sessionShards: [] },
    );
    const a = await TestClient.connect(edge.wsUrl);
    cleanups.push(() => a.terminate());
    for (let i = 0; i < MAX_LAG + 10; i++) a.send(`<message id="m${i}"/>`);
    await until(
      async () => (await edge.metric(`megaphone_edge_shard_holding{shard="0"}`)) === 1,
      "shard 0 held",
    );
    assert.equal(await edge.refusedStatus(), 503);
    assert.equal(
      await edge.metric(`megaphone_edge_upgrades_refused_total{reason="shards-behind"}`),
      1,
    );
    const reader = new FakeSession(edge.bus, [0], "shard-0-session");
    cleanups.push(() => reader.stop());
    await until(
      async () => (await edge.metric(`megaphone_edge_shard_holding{shard="0"}`)) === 0,
      "shard 0 caught up",
    );
    const b = await TestClient.connect(edge.wsUrl);
    cleanups.push(() => b.terminate());
    await until(
      () => reader.entries.length === 1 + MAX_LAG + 10 + 1,
      "a's open and frames, then b's open",
    );
  });
});
