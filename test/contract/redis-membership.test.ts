// Each member gets its own connection, as separate session processes would.
import { silentLogger } from "../../services/shared/log.js";
import { RedisMembership } from "../../services/shared/membership/redis-membership.js";
import type { Redis } from "../../services/shared/redis/client.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { membershipContract } from "./membership.contract.js";

if (onlyImpl("redis")) {
  let server: RedisServer;
  before(async () => (server = await startRedis()));
  after(async () => server?.stop());

  membershipContract("redis", async () => {
    const keys = redisKeys(uniquePrefix());
    const clients: Redis[] = [];
    return {
      member(options) {
        const redis = connect(server.url);
        clients.push(redis);
        return new RedisMembership(redis, keys, options, silentLogger);
      },
      async cleanup() {
        await Promise.all(clients.map((c) => c.quit()));
      },
    };
  });
}
