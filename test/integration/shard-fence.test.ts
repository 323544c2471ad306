// The writes of shard state outside snapshots and acknowledgements, fenced by the shard's lease
// (services/shared/leases/shard-fence.ts): the XEP-0198 unacked queue and the directed-presence
// sets. A member whose lease was taken over (it was paused past it) must write nothing there;
// its successor's writes go through. Without a fence in use (the CLI), writes are plain. A real
// redis-server.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { FencedError } from "../../services/shared/leases/fenced-error.js";
import { RedisShardLeases } from "../../services/shared/leases/redis-shard-leases.js";
import { ShardFence } from "../../services/shared/leases/shard-fence.js";
import type { Lease } from "../../services/shared/leases/shard-leases.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { RedisDirectedPresenceStore } from "../../services/shared/stores/directed/redis-directed-store.js";
import { RedisSmQueueStore } from "../../services/shared/stores/sm/redis-sm-queue-store.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";

const SHARD = 3;

describe("fenced writes of XEP-0198 queues and directed presence", () => {
  let server: RedisServer;
  let redis: Redis;

  before(async () => {
    server = await startRedis();
    redis = connect(server.url);
  });
  after(async () => {
    await redis?.quit();
    await server?.stop();
  });

  /** A member's stores, fencing with whatever lease `held` says it has. */
  function member(keys: ReturnType<typeof redisKeys>, held: { lease?: Lease }) {
    const fence = new ShardFence();
    fence.use((shard) => (shard === held.lease?.shard ? held.lease.token : undefined));
    return {
      sm: new RedisSmQueueStore(redis, keys, fence),
      directed: new RedisDirectedPresenceStore(redis, keys, fence),
    };
  }

  const refused = (err: unknown) => err instanceof FencedError && err.shard === SHARD;

  it("refuses the writes of a member whose lease another took, and lets the new owner write", async () => {
    const keys = redisKeys(uniquePrefix());
    const leases = new RedisShardLeases(redis, keys, { ttlMs: 60000 });
    const oldHeld: { lease?: Lease } = { lease: await leases.acquire(SHARD, "old") };
    const old = member(keys, oldHeld);
    await old.sm.push(SHARD, "sm1", 1, "<message id='1'/>");
    assert.equal(await old.directed.add(SHARD, "c1", "bob@localhost", 10, 1000), "added");

    // Paused past its lease: the shard's lease is someone else's now.
    assert.ok(oldHeld.lease && (await leases.release(oldHeld.lease)));
    const newHeld: { lease?: Lease } = { lease: await leases.acquire(SHARD, "new") };
    const successor = member(keys, newHeld);

    await assert.rejects(old.sm.push(SHARD, "sm1", 1, "<message id='stale'/>"), refused);
    await assert.rejects(old.sm.drop(SHARD, "sm1", 1, 1), refused);
    await assert.rejects(old.sm.delete(SHARD, "sm1"), refused);
    await assert.rejects(old.sm.markSettled(SHARD, "c1", 60000), refused);
    await assert.rejects(old.directed.add(SHARD, "c1", "carol@localhost", 10, 1000), refused);
    await assert.rejects(old.directed.remove(SHARD, "c1", ["bob@localhost"]), refused);
    assert.deepEqual(await successor.sm.range(SHARD, "sm1", 1, 1), ["<message id='1'/>"]);
    assert.deepEqual(await successor.directed.list(SHARD, "c1"), ["bob@localhost"]);
    assert.equal(await successor.sm.isSettled(SHARD, "c1"), false);

    await successor.sm.push(SHARD, "sm1", 2, "<message id='2'/>");
    assert.equal(await successor.directed.add(SHARD, "c1", "carol@localhost", 10, 1000), "added");
    assert.deepEqual(await successor.sm.range(SHARD, "sm1", 1, 2), [
      "<message id='1'/>",
      "<message id='2'/>",
    ]);
  });

  it("refuses before sending when the member holds no lease on the shard", async () => {
    const keys = redisKeys(uniquePrefix());
    const none = member(keys, {});
    await assert.rejects(none.sm.push(SHARD, "sm1", 1, "<x/>"), refused);
    assert.equal(await redis.exists(keys.smQueue(SHARD, "sm1")), 0);
  });

  it("writes unfenced where no fence is in use (the CLI's admin commands)", async () => {
    const keys = redisKeys(uniquePrefix());
    const plain = new RedisSmQueueStore(redis, keys);
    await plain.push(SHARD, "sm1", 1, "<x/>");
    assert.deepEqual(await plain.range(SHARD, "sm1", 1, 1), ["<x/>"]);
  });
});
