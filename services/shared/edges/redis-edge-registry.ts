// Edge liveness in Redis: per edge id a claim naming the incarnation that holds it, per
// incarnation (address) a liveness mark and, once declared dead, a tombstone; both with short
// expiries renewed by heartbeats. A sorted set of addresses scored by their last heartbeat lets
// any session find edges that died without a word (kill -9), whatever connections remain.
import type { Redis } from "../redis/client.js";
import type { Keys } from "../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../redis/script-commands.js";
import type { EdgeHeartbeat, EdgeRegistry, EdgeRegistryOptions } from "./edge-registry.js";

/** A tombstone only has to outlive a paused edge that might wake up; addresses never repeat. */
const BURIED_TTL_MS = 3600_000;

export class RedisEdgeRegistry implements EdgeRegistry {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: EdgeRegistryOptions,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async register(edgeId: string, address: string): Promise<string | undefined> {
    const holder = await this.scripts.mpEdgeClaim(
      this.keys.edgeIdClaim(edgeId),
      address,
      this.options.heartbeatTtlMs,
    );
    if (holder !== null) return holder;
    // A new address has no mark yet: "reset" is the expected answer here.
    return (await this.heartbeat(edgeId, address)) === "lost" ? address : undefined;
  }

  async heartbeat(edgeId: string, address: string): Promise<EdgeHeartbeat> {
    const ttlMs = this.options.heartbeatTtlMs;
    const [holder, alive] = await Promise.all([
      this.scripts.mpEdgeClaim(this.keys.edgeIdClaim(edgeId), address, ttlMs),
      this.scripts.mpEdgeAlive(this.keys.edgeAlive(address), this.keys.edgeBuried(address), ttlMs),
      this.redis.zadd(this.keys.edges(), Date.now(), address),
    ]);
    if (holder !== null || alive === 0) return "lost";
    return alive === 2 ? "reset" : "alive";
  }

  async unregister(edgeId: string, address: string): Promise<void> {
    const claim = this.keys.edgeIdClaim(edgeId);
    await Promise.all([
      this.redis.del(this.keys.edgeAlive(address)),
      this.redis.zrem(this.keys.edges(), address),
      // Only our own claim: a successor may hold it already.
      this.redis.get(claim).then((h) => (h === address ? this.redis.del(claim) : 0)),
    ]);
  }

  async dead(addresses: readonly string[]): Promise<string[]> {
    const exists = await Promise.all(
      addresses.map((a) => this.redis.exists(this.keys.edgeAlive(a))),
    );
    return addresses.filter((_, i) => exists[i] === 0);
  }

  async expired(): Promise<string[]> {
    const quiet = await this.redis.zrangebyscore(
      this.keys.edges(),
      "-inf",
      Date.now() - this.options.heartbeatTtlMs,
    );
    return this.dead(quiet);
  }

  async bury(address: string): Promise<boolean> {
    return (
      (await this.scripts.mpEdgeBury(
        this.keys.edgeAlive(address),
        this.keys.edgeBuried(address),
        BURIED_TTL_MS,
      )) === 1
    );
  }

  async forget(address: string): Promise<void> {
    await this.redis.zrem(this.keys.edges(), address);
  }
}
