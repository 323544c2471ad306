// FencedWrites in Redis: Lua scripts (FENCED_SNAPSHOT_WRITE, which acknowledges entries too when
// given any, FENCED_XACK, FENCED_XACK_MANY in redis/scripts.ts) that check the shard's lease token and
// write in one atomic step. The lease, the snapshots and the inbox share the shard's hash tag,
// so each script of one shard stays in one Redis Cluster slot (the snapshots and
// acknowledgement of one shard are one script there too; only the steps of several shards,
// ackMany's and writeTogether's, are not).
import { SESSION_GROUP } from "../bus/redis-bus-parts.js";
import { isCluster, type Redis } from "../redis/client.js";
import type { Keys } from "../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../redis/script-commands.js";
import { FencedError } from "./fenced-error.js";
import type { EdgeFrame, FencedAck, FencedSnapshotWrite, FencedWrites } from "./fenced-writes.js";
import type { Lease } from "./shard-leases.js";
import type { UnackedStanza } from "../stores/sm/sm-queue-store.js";

const NO_FRAMES: readonly EdgeFrame[] = [];

export class RedisFencedWrites implements FencedWrites {
  private readonly scripts: ScriptCommands;
  readonly writesShardsTogether: boolean;
  readonly writesEdgeFrames: boolean;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    this.scripts = scriptCommands(redis);
    this.writesShardsTogether = !isCluster(redis);
    this.writesEdgeFrames = this.writesShardsTogether;
  }

  async writeSnapshots(
    lease: Lease,
    save: ReadonlyMap<string, string>,
    remove: readonly string[] = [],
    unacked: readonly UnackedStanza[] = [],
  ): Promise<void> {
    await this.writeSnapshotsAndAck(lease, save, remove, [], unacked);
  }

  async writeSnapshotsAndAck(
    lease: Lease,
    save: ReadonlyMap<string, string>,
    remove: readonly string[],
    entryIds: readonly string[],
    unacked: readonly UnackedStanza[] = [],
  ): Promise<number> {
    const [acked] = await this.writeTogether([{ lease, save, remove, entryIds, unacked }]);
    return acked;
  }

  async writeTogether(items: readonly FencedSnapshotWrite[]): Promise<number[]> {
    if (!this.writesEdgeFrames && items.some(({ frames }) => frames && frames.length > 0))
      throw new Error("frames for edges are written with snapshots only on one Redis server");
    if (items.length > 1) {
      // Checked only for steps of several: a one-shard step (every turn's batch) makes no set.
      const shards = new Set(items.map((item) => item.lease.shard));
      if (shards.size < items.length) throw new Error("writeTogether takes one item per shard");
      if (!this.writesShardsTogether)
        throw new Error("a Redis Cluster writes one shard per step (writesShardsTogether)");
    }
    const keys: string[] = [];
    const args: (string | number)[] = [SESSION_GROUP];
    for (const { lease, save, remove, entryIds, unacked, frames = NO_FRAMES } of items) {
      const { shard } = lease;
      keys.push(
        this.keys.shardLease(shard),
        this.keys.snapshot(shard),
        this.keys.shardInbox(shard),
      );
      args.push(
        String(lease.token),
        save.size,
        remove.length,
        unacked.length,
        entryIds.length,
        frames.length,
      );
      for (const [connId, snapshot] of save) args.push(connId, snapshot);
      args.push(...remove);
      for (const { smId, seq, stanza } of unacked) {
        keys.push(this.keys.smQueue(shard, smId));
        args.push(String(seq), stanza);
      }
      args.push(...entryIds);
      for (const { edgeId, connId, frame, origin = "" } of frames) {
        keys.push(this.keys.edgeInbox(edgeId));
        args.push(connId, edgeId, frame, origin);
      }
    }
    const reply = await this.scripts.mpFencedSnapshotWrite(keys.length, ...keys, ...args);
    if (reply[0] === 0) throw fenced(items[reply[1] - 1].lease, reply[2]);
    return reply.slice(1) as number[];
  }

  async ack(lease: Lease, entryIds: readonly string[]): Promise<number> {
    const reply = await this.scripts.mpFencedXack(
      this.keys.shardLease(lease.shard),
      this.keys.shardInbox(lease.shard),
      String(lease.token),
      SESSION_GROUP,
      ...entryIds,
    );
    if (reply[0] === 0) throw fenced(lease, reply[1]);
    return reply[1];
  }

  async ackMany(items: readonly FencedAck[]): Promise<(number | FencedError)[]> {
    if (items.length === 0) return [];
    if (isCluster(this.redis) || items.length === 1)
      return Promise.all(
        items.map(({ lease, entryIds }) =>
          this.ack(lease, entryIds).catch((err: unknown) => {
            if (err instanceof FencedError) return err;
            throw err;
          }),
        ),
      );
    const keys: string[] = [];
    const args: (string | number)[] = [SESSION_GROUP];
    for (const { lease, entryIds } of items) {
      keys.push(this.keys.shardLease(lease.shard), this.keys.shardInbox(lease.shard));
      args.push(String(lease.token), entryIds.length, ...entryIds);
    }
    const replies = await this.scripts.mpFencedXackMany(keys.length, ...keys, ...args);
    return replies.map((reply, i) =>
      reply[0] === 0 ? fenced(items[i].lease, reply[1]) : reply[1],
    );
  }
}

function fenced(lease: Lease, liveToken: string): FencedError {
  return new FencedError(
    lease.shard,
    lease.token,
    liveToken === "" ? undefined : Number(liveToken),
  );
}
