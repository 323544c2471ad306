// Runs every store contract against the Redis implementations on one private redis-server.
// Each test gets its own key prefix, so no test sees another's keys. Setup only.
import type { Redis } from "../../services/shared/redis/client.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { RedisAccountStore } from "../../services/shared/stores/account/redis-account-store.js";
import { RedisOfflineStore } from "../../services/shared/stores/offline/redis-offline-store.js";
import { RedisRosterStore } from "../../services/shared/stores/roster/redis-roster-store.js";
import { RedisRouteStore } from "../../services/shared/stores/route/redis-route-store.js";
import { RedisSnapshotStore } from "../../services/shared/stores/snapshot/redis-snapshot-store.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { RedisSmQueueStore } from "../../services/shared/stores/sm/redis-sm-queue-store.js";
import { smQueueStoreContract } from "./sm-queue-store.contract.js";
import { RedisDirectedPresenceStore } from "../../services/shared/stores/directed/redis-directed-store.js";
import { accountStoreContract } from "./account-store.contract.js";
import { directedStoreContract } from "./directed-store.contract.js";
import { offlineStoreContract } from "./offline-store.contract.js";
import { rosterStoreContract } from "./roster-store.contract.js";
import { routeStoreContract } from "./route-store.contract.js";
import { snapshotStoreContract } from "./snapshot-store.contract.js";
import type { StoreFactory } from "./store-factory.js";

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

    function redis<S>(create: (redis: Redis, keys: Keys) => S): StoreFactory<S> {
      return async () => {
        if (!client) throw new Error("redis-server did not start");
        // The server is private to this run and every test has its own prefix: nothing to clean.
        return { store: create(client, redisKeys(uniquePrefix())), cleanup: async () => {} };
      };
    }

    accountStoreContract(
      "redis",
      redis((r, keys) => new RedisAccountStore(r, keys)),
    );
    rosterStoreContract(
      "redis",
      redis((r, keys) => new RedisRosterStore(r, keys)),
    );
    routeStoreContract(
      "redis",
      redis((r, keys) => new RedisRouteStore(r, keys)),
    );
    offlineStoreContract(
      "redis",
      redis((r, keys) => new RedisOfflineStore(r, keys)),
    );
    directedStoreContract(
      "redis",
      redis((r, keys) => new RedisDirectedPresenceStore(r, keys)),
    );
    snapshotStoreContract(
      "redis",
      redis((r, keys) => new RedisSnapshotStore(r, keys)),
    );
    smQueueStoreContract(
      "redis",
      redis((r, keys) => new RedisSmQueueStore(r, keys)),
    );
  });
}
