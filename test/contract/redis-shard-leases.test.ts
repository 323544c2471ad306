// Runs the ShardLeases contract against RedisShardLeases and RedisFencedWrites on one private
// redis-server, each test under its own key prefix (redis-fixtures.ts). Setup only.
import type { Redis } from "../../services/shared/redis/client.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { redisShardLeasesFixture } from "./redis-fixtures.js";
import { shardLeasesContract } from "./shard-leases.contract.js";

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
      return { store: redisShardLeasesFixture(client), cleanup: async () => {} };
    });
  });
}
