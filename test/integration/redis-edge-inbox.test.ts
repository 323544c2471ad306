// Redis-specific lifecycle of edge inboxes (the Bus contract cannot see keys): an edge's
// inbox lives while its edge refreshes it, and writes for a gone edge never recreate it.
import assert from "node:assert/strict";
import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { until } from "../helpers/poll.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import type { Redis } from "ioredis";
import { testBusOptions } from "../helpers/test-bus.js";

describe("RedisBus edge inboxes", function () {
  this.timeout(10000);
  let server: RedisServer;
  let redis: Redis;
  let keys: Keys;
  let bus: RedisBus;

  before(async () => {
    server = await startRedis();
    redis = connect(server.url);
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
  });
  beforeEach(() => {
    keys = redisKeys(uniquePrefix());
    bus = new RedisBus(testBusOptions(server.url, keys, { edgeInboxTtlMs: 400 }));
  });
  afterEach(() => bus.close());

  it("keeps a read inbox alive with a refreshed expiry and trims what was read", async () => {
    const controller = new AbortController();
    let got = 0;
    const reading = bus.consumeEdge(
      "e1",
      async (batch) => void (got += batch.length),
      controller.signal,
    );
    await until(async () => (await redis.exists(keys.edgeInbox("e1"))) === 1, "the inbox");
    const total = 300; // approximate trimming (MINID ~) frees whole nodes of ~100 entries
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        bus.toEdge("e1", { k: "data", c: "e1.0.1", d: `<a n="${i}"/>` }),
      ),
    );
    await until(async () => got === total, `${total} packets`);
    // Outlives several TTLs because the reader refreshes it.
    const pttl = await redis.pttl(keys.edgeInbox("e1"));
    assert.ok(pttl > 0 && pttl <= 400, `pttl ${pttl}`);
    await until(async () => (await redis.xlen(keys.edgeInbox("e1"))) < total, "trimmed inbox");
    controller.abort();
    await reading;
  });

  it("records how far it handed packets to the sockets: with its next read, and when it stops", async () => {
    const controller = new AbortController();
    const handed: string[] = [];
    // The handler does not return until told to: a batch in the sockets' hands.
    let release: () => void = () => undefined;
    const reading = bus.consumeEdge(
      "e3",
      async (_batch, ids) => {
        handed.push(...ids);
        await new Promise<void>((r) => (release = r));
      },
      controller.signal,
    );
    await until(async () => (await redis.exists(keys.edgeInbox("e3"))) === 1, "the inbox");
    const recorded = () => redis.get(keys.edgeReadCursor("e3"));
    await bus.toEdge("e3", { k: "data", c: "e3.0.1", d: "<a/>" });
    await until(async () => handed.length === 1, "the first batch");
    assert.equal(await recorded(), null, "nothing recorded while the batch is being handed over");
    release();
    await until(async () => (await recorded()) === handed[0], "recorded with the next read");
    await bus.toEdge("e3", { k: "data", c: "e3.0.1", d: "<b/>" });
    await until(async () => handed.length === 2, "the second batch");
    controller.abort(); // stops with the second batch handed over, not read past
    release();
    await reading;
    assert.equal(await recorded(), handed[1], "the last position, written on stop");
  });

  it("lets the inbox of an edge that stopped reading expire, and never recreates it", async () => {
    const controller = new AbortController();
    const reading = bus.consumeEdge("e2", async () => undefined, controller.signal);
    await until(async () => (await redis.exists(keys.edgeInbox("e2"))) === 1, "the inbox");
    controller.abort(); // the edge "dies" without dropping its inbox
    await reading;
    await until(async () => (await redis.exists(keys.edgeInbox("e2"))) === 0, "expiry");
    await bus.toEdge("e2", { k: "data", c: "e2.0.1", d: "<late/>" });
    assert.equal(await redis.exists(keys.edgeInbox("e2")), 0);
  });
});
