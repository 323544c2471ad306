// Runs every store contract against the Redis implementations on one private redis-server.
// Each test gets its own key prefix, so no test sees another's keys. Setup only.
import type { Redis } from "../../services/shared/redis/client.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { redisStoreContracts } from "./redis-fixtures.js";

const onlyImpl = process.env.MEGAPHONE_TEST_ONLY_IMPL || undefined;

if (onlyImpl === undefined || onlyImpl === "redis") {
  describe("redis stores", () => {
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

    redisStoreContracts("redis", () => client);
  });
}
