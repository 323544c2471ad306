// How the Redis bus's shard consumer recovers from failures (DESIGN.md, "Failure model"): a dead
// consumer's pending entries are claimed by a live one, a failing XACK is retried without
// stopping consumption, trimming never removes what the group still needs, and malformed
// entries cannot wedge a shard. RedisBus against a private redis-server; faults are injected
// with ACLs (redis-admin.ts), so nothing here sleeps in the hope that something happened.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import type { ShardBatchHandler } from "../../services/shared/bus/bus.js";
import type { ShardEntry } from "../../services/shared/bus/packets.js";
import { RedisBus, type RedisBusOptions } from "../../services/shared/bus/redis-bus.js";
import { silentLogger, type Logger } from "../../services/shared/log.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { LogCapture } from "../helpers/log-capture.js";
import { until } from "../helpers/poll.js";
import {
  commandCalls,
  connectAdmin,
  pendingCount,
  restoreDefault,
  revokeFromDefault,
} from "../helpers/redis-admin.js";
import { startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { testBusOptions } from "../helpers/test-bus.js";

const ACK_FAILED = "acknowledging a shard batch failed; retrying";
const MALFORMED_DROPPED = "dropping malformed shard inbox entries";

function dataPacket(shard: number, n: number) {
  return { k: "data" as const, c: `e1.${shard}.1`, e: "e1", d: `<m n="${n}"/>` };
}

describe("RedisBus shard consumer recovery", function () {
  this.timeout(20000);
  let server: RedisServer;
  let admin: Redis;
  let keys: Keys;
  let cleanups: (() => unknown)[] = [];

  before(async () => {
    server = await startRedis();
    admin = await connectAdmin(server.url);
  });
  after(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  beforeEach(() => {
    keys = redisKeys(uniquePrefix());
  });
  afterEach(async () => {
    await restoreDefault(admin);
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
  });

  function newBus(options: Partial<RedisBusOptions> = {}, log: Logger = silentLogger): RedisBus {
    const bus = new RedisBus(testBusOptions(server.url, keys, { log, ...options }));
    cleanups.push(() => bus.close());
    return bus;
  }

  /** Starts a consumer; the cleanup stops it (and waits) before its bus closes. */
  function consume(bus: RedisBus, consumer: string, handler: ShardBatchHandler, shards = [0]) {
    const controller = new AbortController();
    const done = bus.consumeShards(shards, consumer, handler, controller.signal);
    cleanups.push(async () => {
      controller.abort();
      await done;
    });
    return { controller, done };
  }

  async function streamIds(key: string): Promise<string[]> {
    return (await admin.xrange(key, "-", "+")).map(([id]) => id);
  }

  it("hands a dead consumer's pending entries to a live one, which acknowledges them", async () => {
    const key = keys.shardInbox(0);
    const deadBus = newBus();
    for (let i = 0; i < 5; i++) await deadBus.toShard(0, dataPacket(0, i));

    // Consumer "a" takes the batch and dies with it: its handler never finishes.
    const taken: ShardEntry[] = [];
    let batchTaken!: () => void;
    const batchArrived = new Promise<void>((resolve) => (batchTaken = resolve));
    let abandon!: (err: Error) => void;
    const dead = consume(deadBus, "a", (batch) => {
      taken.push(...batch);
      batchTaken();
      return new Promise<void>((_, reject) => (abandon = reject));
    });
    // Runs first at cleanup, so that "a"'s loop can end.
    cleanups.push(() => abandon?.(new Error("the dead consumer's handler is abandoned")));
    await batchArrived;
    dead.controller.abort();
    assert.equal(taken.length, 5);
    const pendingForA = (await admin.xpending(key, "session", "-", "+", 10)) as [string, string][];
    assert.deepEqual(
      pendingForA.map(([id, consumer]) => [id, consumer]),
      taken.map((e) => [e.id, "a"]),
    );

    const got: ShardEntry[] = [];
    consume(newBus({ claimIdleMs: 200, trimIntervalMs: 50 }), "b", async (batch) => {
      got.push(...batch);
    });
    await until(
      async () => got.length >= 5 && (await pendingCount(admin, key)) === 0,
      "b to handle and acknowledge the claimed entries",
    );
    assert.deepEqual(
      got.map((e) => e.id),
      taken.map((e) => e.id),
    );
    assert.deepEqual(
      got.map((e) => e.packet),
      taken.map((e) => e.packet),
    );
    // Exactly those entries, each once: nothing else arrived while the claim settled.
    assert.equal(got.length, 5);
  });

  it("keeps consuming when acknowledging fails for a while", async () => {
    const key = keys.shardInbox(0);
    const capture = new LogCapture();
    const bus = newBus({}, capture.logger);
    const seen: string[] = [];
    consume(bus, "c1", async (batch) => {
      for (const entry of batch) if (entry.packet.k === "data") seen.push(entry.packet.d);
    });

    await revokeFromDefault(admin, "xack");
    await bus.toShard(0, { k: "data", c: "e1.0.1", e: "e1", d: "<first/>" });
    await until(() => seen.includes("<first/>"), "the first packet to be handled");
    // Two failed attempts: the consumer retries the acknowledgement, and the entry stays pending.
    await capture.waitFor(ACK_FAILED, 2);
    assert.equal(await pendingCount(admin, key), 1);

    await restoreDefault(admin);
    await bus.toShard(0, { k: "data", c: "e1.0.1", e: "e1", d: "<second/>" });
    await until(() => seen.includes("<second/>"), "the second packet to be handled");
    await until(async () => (await pendingCount(admin, key)) === 0, "every entry acknowledged");
    // The acknowledgement was retried, not the batch: each packet was handled once.
    assert.deepEqual(seen, ["<first/>", "<second/>"]);
  });

  it("never trims entries that are pending, and trims them once acknowledged", async () => {
    const key = keys.shardInbox(0);
    // One batch at a time: the test holds the consumer with a gate batch.
    const bus = newBus({ readCount: 500, trimIntervalMs: 50, entriesInFlight: 1 });
    const handled: ShardEntry[] = [];
    const held: ShardEntry[][] = [];
    let holdNext = false;
    let release: () => void = () => undefined;
    consume(bus, "c1", async (batch) => {
      if (holdNext) {
        holdNext = false;
        held.push(batch);
        await new Promise<void>((resolve) => (release = resolve));
      }
      handled.push(...batch);
    });
    cleanups.push(() => release()); // runs before the consumer is stopped

    const write = (from: number, count: number) =>
      Promise.all(Array.from({ length: count }, (_, i) => bus.toShard(0, dataPacket(0, from + i))));

    // Acknowledged entries are trimmed (MINID ~ frees whole nodes of ~100 entries).
    await write(0, 300);
    await until(() => handled.length === 300, "300 handled");
    await until(async () => (await admin.xlen(key)) < 300, "acknowledged entries trimmed");

    // A gate entry holds the consumer while 300 more arrive; it then reads all 300 in one batch
    // and holds them unacknowledged: the group's last-delivered id is now past all of them.
    holdNext = true;
    await write(1000, 1);
    await until(() => held.length === 1, "the gate batch");
    await write(2000, 300);
    holdNext = true;
    release();
    await until(() => held.length === 2, "the held batch");
    const pendingIds = held[1].map((e) => e.id);
    assert.equal(pendingIds.length, 300);
    assert.equal(await pendingCount(admin, key), 300);

    // Several maintenance rounds later, every pending entry is still in the stream.
    const trimsBefore = await commandCalls(admin, "xtrim");
    await until(
      async () => (await commandCalls(admin, "xtrim")) >= trimsBefore + 4,
      "four more trim rounds",
    );
    const ids = new Set(await streamIds(key));
    const missing = pendingIds.filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], "pending entries were trimmed");

    // Once acknowledged, entries below the group's last-delivered id go.
    release();
    await until(async () => (await pendingCount(admin, key)) === 0, "the held batch acknowledged");
    await until(
      async () => !(await streamIds(key)).includes(pendingIds[0]),
      "the acknowledged entries trimmed",
    );
  });

  it("acknowledges and skips malformed entries, and delivers the valid one after them", async () => {
    const key = keys.shardInbox(2);
    const capture = new LogCapture();
    const bus = newBus({}, capture.logger);
    const malformed = [
      await admin.xadd(key, "*", "k", "data", "c", "e1.2.1"), // no edge, no frame
      await admin.xadd(key, "*", "x", "y"), // no kind, no connection
      await admin.xadd(key, "*", "k", "route", "c", "e1.2.1"), // route without its stanza
      await admin.xadd(key, "*", "k", "bogus", "c", "e1.2.1", "d", "<x/>"), // unknown kind
    ];
    await bus.toShard(2, { k: "data", c: "e1.2.1", e: "e1", d: "<valid/>" });

    const got: ShardEntry[] = [];
    consume(bus, "c1", async (batch) => void got.push(...batch), [2]);
    await until(
      async () => got.length >= 1 && (await pendingCount(admin, key)) === 0,
      "the valid entry handled and everything acknowledged",
    );
    assert.deepEqual(
      got.map((e) => e.packet),
      [{ k: "data", c: "e1.2.1", e: "e1", d: "<valid/>" }],
    );
    const dropped = capture.withMessage(MALFORMED_DROPPED).flatMap((r) => r.ids as string[]);
    assert.deepEqual(dropped, malformed);

    // A pending entry deleted from the stream comes back without fields: skipped alike.
    let failOnce = true;
    const redelivered: ShardEntry[] = [];
    const key3 = keys.shardInbox(3);
    consume(
      bus,
      "c2",
      async (batch) => {
        redelivered.push(...batch);
        if (failOnce) {
          failOnce = false;
          await admin.xdel(key3, batch[0].id);
          throw new Error("fails once, after its entry was deleted");
        }
      },
      [3],
    );
    await bus.toShard(3, { k: "data", c: "e1.3.1", e: "e1", d: "<doomed/>" });
    await bus.toShard(3, { k: "data", c: "e1.3.1", e: "e1", d: "<after/>" });
    await until(
      async () =>
        redelivered.some((e) => e.packet.k === "data" && e.packet.d === "<after/>") &&
        (await pendingCount(admin, key3)) === 0,
      "the entry after the deleted one handled and everything acknowledged",
    );
    assert.equal(
      redelivered.filter((e) => e.packet.k === "data" && e.packet.d === "<doomed/>").length,
      1,
    );
  });
});
