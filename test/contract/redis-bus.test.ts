import { onlyImpl } from "../helpers/only-impl.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import { busContract } from "./bus.contract.js";
import { redisBusFixture } from "./redis-fixtures.js";

if (onlyImpl("redis")) {
  let server: RedisServer;
  before(async () => (server = await startRedis()));
  after(async () => server?.stop());

  busContract("redis", () => redisBusFixture(server.url));
}
