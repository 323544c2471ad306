// The one place that picks implementations from configuration: Redis when a URL is set,
// in-process otherwise (all-in-one). No other module checks which driver is in use.
import type { Bus } from "./bus/bus.js";
import { MemoryBus } from "./bus/memory-bus.js";
import { RedisBus } from "./bus/redis-bus.js";
import type { Config } from "./config.js";
import type { EdgeRegistry } from "./edges/edge-registry.js";
import { MemoryEdgeRegistry } from "./edges/memory-edge-registry.js";
import { RedisEdgeRegistry } from "./edges/redis-edge-registry.js";
import type { FencedWrites } from "./leases/fenced-writes.js";
import { MemoryFencedWrites } from "./leases/memory-fenced-writes.js";
import { MemoryShardLeases } from "./leases/memory-shard-leases.js";
import { RedisFencedWrites } from "./leases/redis-fenced-writes.js";
import { RedisShardLeases } from "./leases/redis-shard-leases.js";
import { ShardFence } from "./leases/shard-fence.js";
import type { ShardLeases } from "./leases/shard-leases.js";
import type { Logger } from "./log.js";
import type { Membership } from "./membership/membership.js";
import { RedisMembership } from "./membership/redis-membership.js";
import { StaticMembership } from "./membership/static-membership.js";
import { createRedis, type Redis } from "./redis/client.js";
import { RedisCommandTimer } from "./redis/command-timer.js";
import { redisKeys } from "./redis/keys.js";
import type { AccountStore } from "./stores/account/account-store.js";
import { MemoryAccountStore } from "./stores/account/memory-account-store.js";
import { RedisAccountStore } from "./stores/account/redis-account-store.js";
import type { DirectedPresenceStore } from "./stores/directed/directed-store.js";
import { MemoryDirectedPresenceStore } from "./stores/directed/memory-directed-store.js";
import { RedisDirectedPresenceStore } from "./stores/directed/redis-directed-store.js";
import { MemoryOfflineStore } from "./stores/offline/memory-offline-store.js";
import type { OfflineStore } from "./stores/offline/offline-store.js";
import { RedisOfflineStore } from "./stores/offline/redis-offline-store.js";
import { MemoryRosterStore } from "./stores/roster/memory-roster-store.js";
import { RedisRosterStore } from "./stores/roster/redis-roster-store.js";
import type { RosterStore } from "./stores/roster/roster-store.js";
import { MemoryRouteStore } from "./stores/route/memory-route-store.js";
import { RedisRouteStore } from "./stores/route/redis-route-store.js";
import type { RouteStore } from "./stores/route/route-store.js";
import { MemorySnapshotStore } from "./stores/snapshot/memory-snapshot-store.js";
import { RedisSnapshotStore } from "./stores/snapshot/redis-snapshot-store.js";
import type { SnapshotStore } from "./stores/snapshot/snapshot-store.js";
import { MemorySmQueueStore } from "./stores/sm/memory-sm-queue-store.js";
import { RedisSmQueueStore } from "./stores/sm/redis-sm-queue-store.js";
import type { SmQueueStore } from "./stores/sm/sm-queue-store.js";
import type { FastTokenStore } from "./stores/fast-token/fast-token-store.js";
import { MemoryFastTokenStore } from "./stores/fast-token/memory-fast-token-store.js";
import { RedisFastTokenStore } from "./stores/fast-token/redis-fast-token-store.js";

export interface Backend {
  kind: "redis" | "memory";
  bus: Bus;
  accounts: AccountStore;
  rosters: RosterStore;
  routes: RouteStore;
  offline: OfflineStore;
  directed: DirectedPresenceStore;
  snapshots: SnapshotStore;
  smQueues: SmQueueStore;
  fastTokens: FastTokenStore;
  edges: EdgeRegistry;
  /** Session members' shard leases and the writes they fence (snapshots, acknowledgements). */
  leases: ShardLeases;
  fenced: FencedWrites;
  /** Fences the other writes of shard state (XEP-0198 queues, directed presence) once used. */
  shardFence: ShardFence;
  /**
   * The session membership chosen by configuration (--membership), for member `memberId`:
   * static (--members, or this member alone), redis (heartbeats) or kubernetes.
   */
  membership(memberId: string): Promise<Membership>;
  /** Times the Redis calls of the bus and the hot stores (nothing in memory mode). */
  redisCommands: RedisCommandTimer;
  /** True while the backing store is reachable. */
  isReady(): boolean;
  close(): Promise<void>;
}

export function createBackend(config: Config, log: Logger): Backend {
  if (config.redis) return createRedisBackend(config, log);
  const bus = new MemoryBus({ readCount: config.inboxReadCount });
  const snapshots = new MemorySnapshotStore();
  const smQueues = new MemorySmQueueStore();
  const leases = new MemoryShardLeases({ ttlMs: config.shardLeaseTtlMs });
  return {
    kind: "memory",
    bus,
    accounts: new MemoryAccountStore(),
    rosters: new MemoryRosterStore(),
    routes: new MemoryRouteStore(),
    offline: new MemoryOfflineStore(),
    directed: new MemoryDirectedPresenceStore(),
    snapshots,
    smQueues,
    fastTokens: new MemoryFastTokenStore(),
    edges: new MemoryEdgeRegistry(),
    leases,
    // One process, nothing to fence against: the in-memory stores take no token.
    shardFence: new ShardFence(),
    // Entries leave the in-process inboxes as they are read: nothing is pending to acknowledge.
    fenced: new MemoryFencedWrites(leases, {
      saveSnapshots: (shard, save, remove) => snapshots.write(shard, save, remove),
      storeUnacked: (shard, unacked) => smQueues.store(shard, unacked),
      ack: () => 0,
    }),
    membership: async (memberId) => staticMembership(config, memberId),
    // No Redis: the histogram is served with no samples.
    redisCommands: new RedisCommandTimer(),
    isReady: () => true,
    close: () => bus.close(),
  };
}

function createRedisBackend(config: Config, log: Logger): Backend {
  const shardFence = new ShardFence();
  const keys = redisKeys();
  const timer = new RedisCommandTimer();
  const redis: Redis = createRedis(config.redis, "megaphone-stores");
  redis.on("error", (err) => log.warn({ err }, "redis store connection error"));
  const bus = new RedisBus({
    url: config.redis,
    keys,
    log,
    readCount: config.inboxReadCount,
    entriesInFlight: config.inboxEntriesInFlight,
    slowBatchMs: config.inboxSlowBatchMs,
    blockMs: config.inboxBlockMs,
    trimIntervalMs: config.trimIntervalMs,
    claimIdleMs: config.claimIdleMs,
    edgeInboxTtlMs: config.edgeInboxTtlMs,
    timer,
  });
  return {
    kind: "redis",
    bus,
    accounts: new RedisAccountStore(redis, keys),
    rosters: new RedisRosterStore(redis, keys),
    routes: new RedisRouteStore(redis, keys, timer),
    offline: new RedisOfflineStore(redis, keys, timer),
    directed: new RedisDirectedPresenceStore(redis, keys, shardFence),
    snapshots: new RedisSnapshotStore(redis, keys),
    smQueues: new RedisSmQueueStore(redis, keys, shardFence),
    fastTokens: new RedisFastTokenStore(redis, keys),
    shardFence,
    edges: new RedisEdgeRegistry(redis, keys, { heartbeatTtlMs: config.edgeHeartbeatTtlMs }),
    leases: new RedisShardLeases(redis, keys, { ttlMs: config.shardLeaseTtlMs }),
    fenced: new RedisFencedWrites(redis, keys),
    async membership(memberId) {
      if (config.membership === "static") return staticMembership(config, memberId);
      if (config.membership === "kubernetes") return kubernetesMembership(config, log);
      const options = {
        heartbeatIntervalMs: config.membershipHeartbeatIntervalMs,
        ttlMs: config.membershipTtlMs,
      };
      return new RedisMembership(redis, keys, options, log);
    },
    redisCommands: timer,
    isReady: () => redis.status === "ready" && bus.isReady(),
    async close() {
      await bus.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** --members (comma-separated or repeated), or this member alone when none are listed. */
function staticMembership(config: Config, memberId: string): Membership {
  const listed = config.members.flatMap((m) => m.split(",")).map((m) => m.trim());
  return new StaticMembership(
    listed.filter(Boolean).length > 0 ? listed.filter(Boolean) : [memberId],
  );
}

/**
 * The ready endpoints of the session Service, in-cluster unless an API server URL is set.
 * Loaded on demand: the Kubernetes client takes about a second to load, which no other process
 * (edges, the CLI) should pay.
 */
async function kubernetesMembership(config: Config, log: Logger): Promise<Membership> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const { createKubernetesMembership } = await import("./membership/kubernetes-membership.js");
  let kubeConfig: InstanceType<typeof KubeConfig> | undefined;
  if (config.kubernetesApiUrl) {
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      // client-node refuses plain http unless told to skip TLS checks: there is no TLS then.
      clusters: [
        {
          name: "api",
          server: config.kubernetesApiUrl,
          skipTLSVerify: config.kubernetesApiUrl.startsWith("http:"),
        },
      ],
      users: [{ name: "megaphone" }],
      contexts: [{ name: "megaphone", cluster: "api", user: "megaphone" }],
      currentContext: "megaphone",
    });
  }
  return createKubernetesMembership(
    {
      namespace: config.kubernetesNamespace,
      serviceName: config.kubernetesSessionService,
      kubeConfig,
    },
    log,
  );
}
