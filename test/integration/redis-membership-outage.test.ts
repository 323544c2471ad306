// RedisMembership when Redis stops answering (SIGSTOP of the test's own redis-server, so
// commands hang rather than fail): a member that cannot renew for membershipTtlMs has been
// dropped by the others, so its own view empties too (it must not keep owning shards by a
// stale view); once Redis answers again, its heartbeat brings the live set back. And closing
// does not hang on a store that hangs.
import assert from "node:assert/strict";
import { silentLogger } from "../../services/shared/log.js";
import { RedisMembership } from "../../services/shared/membership/redis-membership.js";
import type { Redis } from "../../services/shared/redis/client.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { until } from "../helpers/poll.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";

const OPTIONS = { heartbeatIntervalMs: 100, ttlMs: 400 };

describe("RedisMembership while Redis hangs", () => {
  let server: RedisServer;
  let clients: Redis[] = [];
  let members: RedisMembership[] = [];
  before(async () => (server = await startRedis()));
  after(async () => server?.stop());
  afterEach(async () => {
    server.process.kill("SIGCONT");
    await Promise.all(members.map((m) => m.close()));
    await Promise.all(clients.map((c) => c.quit()));
    clients = [];
    members = [];
  });

  function member(keys = redisKeys(uniquePrefix())): RedisMembership {
    const redis = connect(server.url);
    clients.push(redis);
    const m = new RedisMembership(redis, keys, OPTIONS, silentLogger);
    members.push(m);
    return m;
  }

  it("empties the view of a member that cannot renew for the ttl, and restores it after", async () => {
    const a = member();
    const seen: string[][] = [];
    a.onChange((set) => seen.push([...set]));
    await a.join("a");
    const stopped = Date.now();
    server.process.kill("SIGSTOP");
    await until(() => a.members().length === 0, "a's view to empty", OPTIONS.ttlMs + 2000);
    const emptiedMs = Date.now() - stopped;
    assert.ok(emptiedMs >= OPTIONS.ttlMs - OPTIONS.heartbeatIntervalMs - 20, `${emptiedMs} ms`);
    server.process.kill("SIGCONT");
    await until(() => a.members().length === 1, "a's view to come back", 5000);
    assert.deepEqual(seen, [["a"], [], ["a"]]);
  });

  it("closes within the ttl while a renewal hangs", async () => {
    const a = member();
    await a.join("a");
    server.process.kill("SIGSTOP");
    // An empty view means a renewal has been hanging for the ttl: close() must not wait on it.
    await until(() => a.members().length === 0, "a renewal to hang", OPTIONS.ttlMs + 2000);
    const started = Date.now();
    await a.close();
    const closeMs = Date.now() - started;
    assert.ok(closeMs <= OPTIONS.ttlMs + 500, `close took ${closeMs} ms`);
  });
});
