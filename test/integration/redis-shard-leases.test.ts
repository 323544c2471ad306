// What only Redis can do to shard leases (the contract suite covers the rest): lose its data,
// and spread keys over Cluster slots. A real redis-server; FLUSHALL stands for a restart
// without persistence or a failover to an empty replica.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { FencedError } from "../../services/shared/leases/fenced-error.js";
import { RedisFencedWrites } from "../../services/shared/leases/redis-fenced-writes.js";
import { RedisShardLeases } from "../../services/shared/leases/redis-shard-leases.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";

/** The part of a key Redis Cluster hashes: the first non-empty {…}, else the whole key. */
function hashedPart(key: string): string {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

describe("redis shard leases: data loss and Cluster slots", () => {
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

  it("never hands out an earlier token again after Redis lost its data, so the old owner stays fenced", async () => {
    const keys = redisKeys(uniquePrefix());
    const leases = new RedisShardLeases(redis, keys, { ttlMs: 60000 });
    const fenced = new RedisFencedWrites(redis, keys);
    // Several acquisitions before the loss, so a counter restarting from 1 would repeat one.
    let old = await leases.acquire(9, "member-a");
    for (let i = 0; i < 3; i++) {
      assert.ok(old && (await leases.release(old)));
      old = await leases.acquire(9, "member-a");
    }
    assert.ok(old);

    await redis.flushall();
    await assert.rejects(
      fenced.writeSnapshots(old, new Map([["conn-1", "stale"]])),
      (err: unknown) => err instanceof FencedError && err.liveToken === undefined,
    );

    const next = await leases.acquire(9, "member-b");
    assert.ok(next);
    assert.ok(next.token > old.token, `token ${next.token} after the loss, ${old.token} before`);
    // Stored digit for digit (a token Lua printed as a float would never match again).
    assert.equal(await redis.hget(keys.shardLease(9), "token"), String(next.token));
    await assert.rejects(
      fenced.writeSnapshots(old, new Map([["conn-1", "stale"]])),
      (err: unknown) => err instanceof FencedError && err.liveToken === next.token,
    );
    assert.deepEqual(await redis.hgetall(keys.snapshot(9)), {});
  });

  it("keeps a shard's lease, token counter, snapshots and inbox under one hash tag (one Cluster slot)", () => {
    const keys = redisKeys("mp");
    for (const shard of [0, 7, 63]) {
      const tags = [
        keys.shardLease(shard),
        keys.shardLeaseToken(shard),
        keys.snapshot(shard),
        keys.shardInbox(shard),
      ].map(hashedPart);
      assert.deepEqual(tags, Array(4).fill(`s${shard}`));
    }
  });
});
