// Each member gets its own connection, as separate session processes would.
import { onlyImpl } from "../helpers/only-impl.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { membershipContract } from "./membership.contract.js";
import { redisMembershipFixture } from "./redis-fixtures.js";

if (onlyImpl("redis")) {
  let server: RedisServer;
  before(async () => (server = await startRedis()));
  after(async () => server?.stop());

  membershipContract("redis", async () => redisMembershipFixture(() => connect(server.url)));
}
