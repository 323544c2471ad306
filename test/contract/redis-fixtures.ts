// What the Redis contract runners share, whatever Redis they run on (one server or a Cluster):
// how each contract's Redis implementation is built over a client or a URL. Every test gets
// its own key prefix, so tests on one server never see each other's keys; the servers are
// private to the run, so there is nothing to clean.
import { edgePacketOf, shardPacketOf } from "../../services/shared/bus/packets.js";
import { SESSION_GROUP } from "../../services/shared/bus/redis-bus-parts.js";
import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { RedisFencedWrites } from "../../services/shared/leases/redis-fenced-writes.js";
import { RedisShardLeases } from "../../services/shared/leases/redis-shard-leases.js";
import { silentLogger } from "../../services/shared/log.js";
import { RedisMembership } from "../../services/shared/membership/redis-membership.js";
import { isCluster, type Redis } from "../../services/shared/redis/client.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { RedisAccountStore } from "../../services/shared/stores/account/redis-account-store.js";
import { RedisDirectedPresenceStore } from "../../services/shared/stores/directed/redis-directed-store.js";
import { RedisOfflineStore } from "../../services/shared/stores/offline/redis-offline-store.js";
import { RedisRosterStore } from "../../services/shared/stores/roster/redis-roster-store.js";
import { RedisRouteStore } from "../../services/shared/stores/route/redis-route-store.js";
import { RedisSmQueueStore } from "../../services/shared/stores/sm/redis-sm-queue-store.js";
import { RedisSnapshotStore } from "../../services/shared/stores/snapshot/redis-snapshot-store.js";
import { uniquePrefix } from "../helpers/redis-server.js";
import { accountStoreContract } from "./account-store.contract.js";
import type { BusFixture } from "./bus.contract.js";
import { directedStoreContract } from "./directed-store.contract.js";
import type { MembershipFixture } from "./membership.contract.js";
import { offlineStoreContract } from "./offline-store.contract.js";
import { rosterStoreContract } from "./roster-store.contract.js";
import { routeStoreContract } from "./route-store.contract.js";
import { LEASE_TTL_MS, type ShardLeasesUnderTest } from "./shard-leases.contract.js";
import { smQueueStoreContract } from "./sm-queue-store.contract.js";
import { RedisFastTokenStore } from "../../services/shared/stores/fast-token/redis-fast-token-store.js";
import { fastTokenStoreContract } from "./fast-token-store.contract.js";
import { snapshotStoreContract } from "./snapshot-store.contract.js";
import type { StoreFactory } from "./store-factory.js";
import { testBusOptions } from "../helpers/test-bus.js";

/** Registers every store contract over `client()` (called once the server is up). */
export function redisStoreContracts(name: string, client: () => Redis | undefined): void {
  function redis<S>(create: (redis: Redis, keys: Keys) => S): StoreFactory<S> {
    return async () => {
      const redis = client();
      if (!redis) throw new Error("redis did not start");
      return { store: create(redis, redisKeys(uniquePrefix())), cleanup: async () => {} };
    };
  }
  accountStoreContract(
    name,
    redis((r, keys) => new RedisAccountStore(r, keys)),
  );
  rosterStoreContract(
    name,
    redis((r, keys) => new RedisRosterStore(r, keys)),
  );
  routeStoreContract(
    name,
    redis((r, keys) => new RedisRouteStore(r, keys)),
  );
  offlineStoreContract(
    name,
    redis((r, keys) => new RedisOfflineStore(r, keys)),
  );
  directedStoreContract(
    name,
    redis((r, keys) => new RedisDirectedPresenceStore(r, keys)),
  );
  snapshotStoreContract(
    name,
    redis((r, keys) => new RedisSnapshotStore(r, keys)),
  );
  smQueueStoreContract(
    name,
    redis((r, keys) => new RedisSmQueueStore(r, keys)),
  );
  fastTokenStoreContract(
    name,
    redis((r, keys) => new RedisFastTokenStore(r, keys)),
  );
}

/** A RedisBus on `url` with small timings, connected when it resolves. */
export async function redisBusFixture(url: string): Promise<BusFixture> {
  const bus = new RedisBus(testBusOptions(url, redisKeys(uniquePrefix()), { blockMs: 100 }));
  await bus.shardLag(0); // one round trip: the writer is connected when it returns
  return { bus, cleanup: () => bus.close() };
}

/** Members that each get their own connection from `connect`, as separate processes would. */
export function redisMembershipFixture(connect: () => Redis): MembershipFixture {
  const keys = redisKeys(uniquePrefix());
  const clients: Redis[] = [];
  return {
    member(options) {
      const redis = connect();
      clients.push(redis);
      return new RedisMembership(redis, keys, options, silentLogger);
    },
    async cleanup() {
      await Promise.all(clients.map((c) => c.quit()));
    },
  };
}

/**
 * RedisShardLeases and RedisFencedWrites over `redis`. The ack cases use a real shard inbox
 * stream with the session consumer group, and read what is pending with XPENDING.
 */
export function redisShardLeasesFixture(redis: Redis): ShardLeasesUnderTest {
  const keys = redisKeys(uniquePrefix());
  return {
    leases: new RedisShardLeases(redis, keys, { ttlMs: LEASE_TTL_MS }),
    fenced: new RedisFencedWrites(redis, keys),
    snapshots: async (shard) => new Map(Object.entries(await redis.hgetall(keys.snapshot(shard)))),
    deliver: async (shard, count) => {
      const inbox = keys.shardInbox(shard);
      await redis.xgroup("CREATE", inbox, SESSION_GROUP, "$", "MKSTREAM").catch((err) => {
        if (!/BUSYGROUP/.test(String(err))) throw err;
      });
      for (let i = 0; i < count; i++) await redis.xadd(inbox, "*", "k", "data", "d", `${i}`);
      const read = (await redis.xreadgroup(
        "GROUP",
        SESSION_GROUP,
        "old-owner",
        "COUNT",
        count,
        "STREAMS",
        inbox,
        ">",
      )) as [string, [string, string[]][]][];
      return read[0]![1].map(([id]) => id);
    },
    pending: async (shard) => {
      const entries = (await redis.xpending(
        keys.shardInbox(shard),
        SESSION_GROUP,
        "-",
        "+",
        1000,
      )) as [string, string, number, number][];
      return entries.map(([id]) => id);
    },
    unacked: async (shard, smId) =>
      new Map(Object.entries(await redis.hgetall(keys.smQueue(shard, smId)))),
    // A cluster keeps an edge's inbox in a slot of its own: no frames are written there.
    edges: isCluster(redis)
      ? undefined
      : {
          open: async (edgeId) =>
            void (await redis.xadd(keys.edgeInbox(edgeId), "*", "k", "inbox-created")),
          packets: async (edgeId) =>
            (await redis.xrange(keys.edgeInbox(edgeId), "-", "+")).flatMap(([, fields]) => {
              const packet = edgePacketOf(fields);
              return packet ? [packet] : [];
            }),
          undelivered: async (shard) =>
            (await redis.xrange(keys.shardInbox(shard), "-", "+")).flatMap(([, fields]) => {
              const packet = shardPacketOf(fields);
              return packet?.k === "undelivered" ? [packet] : [];
            }),
        },
  };
}
