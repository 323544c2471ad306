// Runs the ShardLeases contract against MemoryShardLeases and MemoryFencedWrites, writing to a
// plain map of snapshots, one of XEP-0198 queues and a list of pending entry ids. Setup only.
import { MemoryFencedWrites } from "../../services/shared/leases/memory-fenced-writes.js";
import { MemoryShardLeases } from "../../services/shared/leases/memory-shard-leases.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { LEASE_TTL_MS, shardLeasesContract } from "./shard-leases.contract.js";

if (onlyImpl("memory")) {
  shardLeasesContract("memory", async () => {
    const snapshots = new Map<number, Map<string, string>>();
    const pending = new Map<number, string[]>();
    /** `${shard} ${smId}` → seq → stanza */
    const queues = new Map<string, Map<string, string>>();
    let nextId = 0;
    const leases = new MemoryShardLeases({ ttlMs: LEASE_TTL_MS });
    const fenced = new MemoryFencedWrites(leases, {
      saveSnapshots(shard, save, remove) {
        let stored = snapshots.get(shard);
        if (!stored) snapshots.set(shard, (stored = new Map()));
        for (const [connId, snapshot] of save) stored.set(connId, snapshot);
        for (const connId of remove) stored.delete(connId);
      },
      storeUnacked(shard, unacked) {
        for (const { smId, seq, stanza } of unacked) {
          const key = `${shard} ${smId}`;
          let queue = queues.get(key);
          if (!queue) queues.set(key, (queue = new Map()));
          queue.set(String(seq), stanza);
        }
      },
      ack(shard, entryIds) {
        const before = pending.get(shard) ?? [];
        const after = before.filter((id) => !entryIds.includes(id));
        pending.set(shard, after);
        return before.length - after.length;
      },
    });
    return {
      store: {
        leases,
        fenced,
        snapshots: async (shard) => new Map(snapshots.get(shard)),
        deliver: async (shard, count) => {
          const ids = Array.from({ length: count }, () => `${++nextId}-0`);
          pending.set(shard, [...(pending.get(shard) ?? []), ...ids]);
          return ids;
        },
        pending: async (shard) => [...(pending.get(shard) ?? [])],
        unacked: async (shard, smId) => new Map(queues.get(`${shard} ${smId}`)),
      },
      cleanup: async () => {},
    };
  });
}
