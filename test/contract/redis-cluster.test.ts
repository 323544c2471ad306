// Runs the Redis contracts (stores, bus, membership, shard leases with fenced writes) against a
// real Redis Cluster of three primaries (test/helpers/redis-cluster.ts), through the same
// client Megaphone uses for a redis+cluster:// URL. A multi-key command, transaction or script
// whose keys are not in one slot fails here with CROSSSLOT. Setup only.
import assert from "node:assert/strict";
import { Redis as SingleRedis } from "ioredis";
import { createRedis, type Redis } from "../../services/shared/redis/client.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { report } from "../helpers/report.js";
import {
  crossSlotErrors,
  keysPerNode,
  startRedisCluster,
  type RedisCluster,
} from "../helpers/redis-cluster.js";
import { busContract } from "./bus.contract.js";
import { membershipContract } from "./membership.contract.js";
import {
  redisBusFixture,
  redisMembershipFixture,
  redisShardLeasesFixture,
  redisStoreContracts,
} from "./redis-fixtures.js";
import { shardLeasesContract } from "./shard-leases.contract.js";

if (onlyImpl("redis-cluster")) {
  describe("redis cluster", function () {
    this.timeout(30000);
    let cluster: RedisCluster | undefined;
    let client: Redis | undefined;

    before(async () => {
      cluster = await startRedisCluster();
      client = createRedis(cluster.url, "megaphone-test");
    });

    after(async () => {
      await client?.quit();
      await cluster?.stop();
    });

    function url(): string {
      if (!cluster) throw new Error("the cluster did not start");
      return cluster.url;
    }

    redisStoreContracts("redis cluster", () => client);
    busContract("redis cluster", () => redisBusFixture(url()));
    membershipContract("redis cluster", async () =>
      redisMembershipFixture(() => createRedis(url(), "megaphone-test-member")),
    );
    shardLeasesContract("redis cluster", async () => {
      if (!client) throw new Error("the cluster did not start");
      return { store: redisShardLeasesFixture(client), cleanup: async () => {} };
    });

    // Declared last, so mocha runs it after every contract above.
    describe("slots", () => {
      it("spread the contracts' keys over the primaries, and no command crossed slots", async () => {
        if (!cluster || !client) throw new Error("the cluster did not start");
        const perNode = await keysPerNode(cluster);
        const crossSlot = await crossSlotErrors(cluster);
        report(`keys per primary: ${perNode.join(" / ")}; CROSSSLOT refusals: ${crossSlot}`);
        assert.equal(crossSlot, 0, "a contract sent a command whose keys span slots");
        assert.ok(
          perNode.filter((n) => n > 0).length >= 2,
          "the keys are spread over the primaries",
        );
        // Both checks can fail: the cluster client refuses a command over two hash tags
        // before sending it, and a node refuses and counts one sent to it directly.
        await assert.rejects(client.del("{one}:k", "{two}:k"), /same slot/);
        const direct = new SingleRedis(cluster.nodes[0]!.url, { maxRetriesPerRequest: 1 });
        try {
          await assert.rejects(direct.del("{one}:k", "{two}:k"), /CROSSSLOT/);
        } finally {
          direct.disconnect();
        }
        assert.equal(await crossSlotErrors(cluster), 1);
      });
    });
  });
}
