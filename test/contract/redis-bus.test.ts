import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { silentLogger } from "../../services/shared/log.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { busContract } from "./bus.contract.js";
import { DEFAULTS } from "../../services/shared/config.js";

if (onlyImpl("redis")) {
  let server: RedisServer;
  before(async () => (server = await startRedis()));
  after(async () => server?.stop());

  busContract("redis", async () => {
    const bus = new RedisBus({
      url: server.url,
      keys: redisKeys(uniquePrefix()),
      log: silentLogger,
      readCount: 16,
      entriesInFlight: 4096,
      slowBatchMs: 10,
      blockMs: 100,
      trimIntervalMs: 50,
      claimIdleMs: DEFAULTS.claimIdleMs,
      edgeInboxTtlMs: DEFAULTS.edgeInboxTtlMs,
    });
    await bus.shardLag(0); // one round trip: the writer is connected when it returns
    return { bus, cleanup: () => bus.close() };
  });
}
