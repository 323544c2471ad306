// Runs the ShardLeases contract against RedisShardLeases and RedisFencedWrites on one private
// redis-server, each test under its own key prefix. The ack cases use a real shard inbox stream
// with the session consumer group, and read what is pending with XPENDING. Setup only.
import { SESSION_GROUP } from "../../services/shared/bus/redis-bus-parts.js";
import { RedisFencedWrites } from "../../services/shared/leases/redis-fenced-writes.js";
import { RedisShardLeases } from "../../services/shared/leases/redis-shard-leases.js";
import type { Redis } from "../../services/shared/redis/client.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { LEASE_TTL_MS, shardLeasesContract } from "./shard-leases.contract.js";

if (onlyImpl("redis")) {
  describe("redis shard leases", () => {
    let server: RedisServer | undefined;
    let client: Redis | undefined;

    before(async () => {
      server = await startRedis();
      client = connect(server.url);
    });

    after(async () => {
      await client?.quit();
      await server?.stop();
    });

    shardLeasesContract("redis", async () => {
      if (!client) throw new Error("redis-server did not start");
      const redis = client;
      const keys = redisKeys(uniquePrefix());
      return {
        store: {
          leases: new RedisShardLeases(redis, keys, { ttlMs: LEASE_TTL_MS }),
          fenced: new RedisFencedWrites(redis, keys),
          snapshots: async (shard) =>
            new Map(Object.entries(await redis.hgetall(keys.snapshot(shard)))),
          deliver: async (shard, count) => {
            const inbox = keys.shardInbox(shard);
            await redis.xgroup("CREATE", inbox, SESSION_GROUP, "$", "MKSTREAM").catch((err) => {
              if (!/BUSYGROUP/.test(String(err))) throw err;
            });
            for (let i = 0; i < count; i++) await redis.xadd(inbox, "*", "k", "data", "d", `${i}`);
            const read = (await redis.xreadgroup(
              "GROUP",
              SESSION_GROUP,
              "old-owner",
              "COUNT",
              count,
              "STREAMS",
              inbox,
              ">",
            )) as [string, [string, string[]][]][];
            return read[0]![1].map(([id]) => id);
          },
          pending: async (shard) => {
            const entries = (await redis.xpending(
              keys.shardInbox(shard),
              SESSION_GROUP,
              "-",
              "+",
              1000,
            )) as [string, string, number, number][];
            return entries.map(([id]) => id);
          },
        },
        // The server is private to this run and every test has its own prefix: nothing to clean.
        cleanup: async () => {},
      };
    });
  });
}
