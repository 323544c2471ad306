// A Redis Cluster primary dies (kill -9) under Megaphone's cluster client: commands for its
// slots must fail as store errors (isStoreError), so a session batch fails and is delivered
// again instead of turning into a stanza error and being acknowledged; commands for the other
// primaries' slots go on working.
import assert from "node:assert/strict";
import { Redis as SingleRedis } from "ioredis";
import { createRedis, type Redis } from "../../services/shared/redis/client.js";
import { isStoreError } from "../../services/shared/redis/errors.js";
import { startRedisCluster, type RedisCluster } from "../helpers/redis-cluster.js";
import { report } from "../helpers/report.js";

/** Keys under distinct hash tags, so they land on every primary. */
const KEYS = Array.from({ length: 30 }, (_, i) => `outage:{k${i}}`);

describe("Redis Cluster: a primary dies", function () {
  this.timeout(30000);
  let cluster: RedisCluster | undefined;
  let redis: Redis | undefined;

  before(async () => {
    cluster = await startRedisCluster();
    redis = createRedis(cluster.url, "megaphone-test");
    redis.on("error", () => undefined); // the failures surface through the commands
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it("fails the dead primary's commands as store errors within seconds; the others keep working", async () => {
    if (!cluster || !redis) throw new Error("the cluster did not start");
    const client = redis;
    await Promise.all(KEYS.map((key) => client.set(key, "1")));
    // A node answers MOVED for a key it does not serve.
    const victim = cluster.nodes[0]!;
    const direct = new SingleRedis(victim.url, { maxRetriesPerRequest: 1 });
    const onVictim = new Set<string>();
    try {
      for (const key of KEYS)
        if ((await direct.get(key).catch(() => null)) === "1") onVictim.add(key);
    } finally {
      direct.disconnect();
    }
    assert.ok(onVictim.size > 0 && onVictim.size < KEYS.length, `${onVictim.size} keys on it`);

    victim.process.kill("SIGKILL");
    const started = Date.now();
    const outcomes = await Promise.all(
      KEYS.map((key) =>
        client.get(key).then(
          (value) => ({ key, failed: false, store: false, value }),
          (err: unknown) => ({ key, failed: true, store: isStoreError(err), value: String(err) }),
        ),
      ),
    );
    const elapsedMs = Date.now() - started;
    const failed = outcomes.filter((o) => o.failed);
    report(
      `${KEYS.length} keys, ${onVictim.size} on the dead primary: ${failed.length} failed (${failed.filter((o) => o.store).length} as store errors) within ${elapsedMs} ms`,
    );
    assert.deepEqual(
      failed.map((o) => o.key),
      KEYS.filter((key) => onVictim.has(key)),
      "exactly the dead primary's keys fail",
    );
    assert.ok(
      failed.every((o) => o.store),
      failed.map((o) => o.value).join("; "),
    );
    assert.ok(
      outcomes.filter((o) => !o.failed).every((o) => o.value === "1"),
      "the live primaries answer",
    );
    assert.ok(elapsedMs < 10000, `failed after ${elapsedMs} ms`);

    // Later commands, sent while the client tries to reconnect to the dead primary, fail too
    // (bounded by maxRetriesPerRequest) instead of waiting for it.
    const againStarted = Date.now();
    const again = await Promise.all(
      [...onVictim].map((key) =>
        client.get(key).then(
          () => false,
          (err: unknown) => isStoreError(err),
        ),
      ),
    );
    const againMs = Date.now() - againStarted;
    report(
      `then ${again.filter(Boolean).length}/${again.length} failed as store errors within ${againMs} ms`,
    );
    assert.ok(again.every(Boolean));
    assert.ok(againMs < 10000, `failed after ${againMs} ms`);
  });
});
