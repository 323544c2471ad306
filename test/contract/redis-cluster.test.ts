// Runs the Redis contracts (stores, bus, membership, shard leases with fenced writes) against a
// real Redis Cluster of three primaries (test/helpers/redis-cluster.ts), through the same
// client Megaphone uses for a redis+cluster:// URL. A multi-key command, transaction or script
// whose keys are not in one slot fails here with CROSSSLOT. Setup only.
import assert from "node:assert/strict";
import { Redis as SingleRedis } from "ioredis";
import { createRedis, type Redis } from "../../services/shared/redis/client.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { RedisOfflineStore } from "../../services/shared/stores/offline/redis-offline-store.js";
import { RedisRosterStore } from "../../services/shared/stores/roster/redis-roster-store.js";
import { RedisRouteStore } from "../../services/shared/stores/route/redis-route-store.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { report } from "../helpers/report.js";
import {
  crossSlotErrors,
  keysPerNode,
  startRedisCluster,
  type RedisCluster,
} from "../helpers/redis-cluster.js";
import { uniquePrefix } from "../helpers/redis-server.js";
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
      // RFC 7622 lets a localpart hold "}"; a leading one would empty the keys' hash tag.
      it("serves a user whose JID starts with }: its roster, routes and offline queue", async () => {
        if (!client) throw new Error("the cluster did not start");
        const keys = redisKeys(uniquePrefix());
        const user = "}x@localhost";
        const rosters = new RedisRosterStore(client, keys);
        const added = await rosters.replaceItem(
          user,
          "bob@localhost",
          undefined,
          { jid: "bob@localhost", subscription: "none", groups: [] },
          10,
        );
        assert.deepEqual(added, { ok: true, version: "1" });
        assert.equal((await rosters.get(user)).items.length, 1);
        const routes = new RedisRouteStore(client, keys);
        assert.deepEqual(await routes.bind(user, "r", "e1:ab.0.1", 5), { ok: true });
        assert.equal(await routes.unbind(user, "r", "e1:ab.0.1"), true);
        const offline = new RedisOfflineStore(client, keys);
        const limits = { maxMessages: 10, maxBytes: 10000, maxPerSender: 10 };
        assert.equal(await offline.pushFrom(user, "bob@localhost", "<message/>", limits), "stored");
        assert.deepEqual(await offline.takeAll(user), ["<message/>"]);
      });

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
